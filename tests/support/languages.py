"""Real text in every language a knowledge base can be in, for the text module's tests and the
knowledge base's: how callers ask, and the same paragraph of a clinic's page."""

from __future__ import annotations

from kubevox_api.languages import TextLanguage

QUESTIONS: dict[TextLanguage, list[str]] = {
    "en": [
        "When does the pharmacy open on Saturday?",
        "Can I bring my dog to the appointment?",
        "How much is a medical certificate for my football club?",
        "Where can I leave my car and is it free?",
    ],
    "fr": [
        "Quand la pharmacie est-elle ouverte le samedi ?",
        "Est-ce que je peux venir sans rendez-vous ?",
        "Combien coûte un certificat médical pour mon club de foot ?",
        "Où puis-je garer ma voiture ?",
    ],
    "es": [
        "¿Cuándo abre la farmacia los sábados?",
        "¿Puedo ir sin cita previa?",
        "¿Cuánto cuesta un certificado médico para mi club de fútbol?",
        "¿Dónde puedo aparcar el coche?",
    ],
    "de": [
        "Wann hat die Apotheke am Samstag geöffnet?",
        "Kann ich ohne Termin kommen?",
        "Wie viel kostet ein ärztliches Attest für meinen Fußballverein?",
        "Wo kann ich mein Auto parken?",
    ],
    "ar": [
        "متى تفتح الصيدلية يوم السبت؟",
        "هل يمكنني الحضور بدون موعد؟",
        "كم تكلفة الشهادة الطبية لنادي كرة القدم؟",
        "أين يمكنني ركن سيارتي؟",
    ],
}
"""How callers ask, in each language."""

DOCUMENTS: dict[TextLanguage, str] = {
    "en": "The clinic is open Monday to Friday from 8:00 am to 6:30 pm. Patients may park for "
    "free for up to two hours in the underground garage; take a ticket at the barrier and have "
    "it stamped at reception.",
    "fr": "La clinique est ouverte du lundi au vendredi de 8 h à 18 h 30. Les patients peuvent se "
    "garer gratuitement pendant deux heures au maximum dans le parking souterrain ; prenez un "
    "ticket à la barrière et faites-le tamponner à l\u2019accueil.",
    "es": "La clínica abre de lunes a viernes de 8:00 a 18:30. Los pacientes pueden aparcar "
    "gratis hasta dos horas en el garaje subterráneo; recojan un tique en la barrera y "
    "séllenlo en la recepción.",
    "de": "Die Praxis ist von Montag bis Freitag von 8:00 bis 18:30 Uhr geöffnet. Patienten "
    "können bis zu zwei Stunden kostenlos in der Tiefgarage parken; ziehen Sie an der Schranke "
    "ein Ticket und lassen Sie es am Empfang abstempeln.",
    "ar": "العيادة مفتوحة من الاثنين إلى الجمعة من الساعة 8:00 صباحًا حتى 6:30 مساءً. يمكن "
    "للمرضى ركن سياراتهم مجانًا لمدة تصل إلى ساعتين في المرآب تحت الأرض، خذوا تذكرة عند "
    "الحاجز واختموها عند الاستقبال.",
}
"""The same paragraph of a clinic's page in each language."""
