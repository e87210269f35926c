"""The per-language tables of :mod:`agent_runtime.text`, keyed by the codes of
:data:`kubevox_api.languages.TEXT_LANGUAGES` (a test checks every one of them is here).

For each language:

* ``SNOWBALL``: the name of its stemmer, the same for the ``snowballstemmer`` package and
  RediSearch's ``LANGUAGE`` (both use the Snowball algorithms).
* ``QUERY_STOPWORDS``: question words and fillers, left out of a full-text query (in an OR-query
  they would select nearly every passage), and RediSearch's own stop words
  (:data:`INDEX_STOPWORDS`) in every language.
* ``STOPWORDS``: the words that carry no fact, which the grounding guard and condensing ignore:
  the query stop words, politeness, and the words of an honest "I don't know" (which never needs
  support).
* ``NEGATIONS``: the words that negate a statement, which the guard compares (a sentence and
  its evidence must both say no, or both not).
* ``LETTERS``: letters written in that language and in none of the others here (detection).

The English lists are the ones retrieval and the guard were measured with (docs/benchmarks.md);
the others are written the same way, compact: function words, not a frequency list.
"""

from __future__ import annotations

from typing import Final

from kubevox_api.languages import TextLanguage

SNOWBALL: Final[dict[TextLanguage, str]] = {
    "en": "english",
    "fr": "french",
    "es": "spanish",
    "de": "german",
    "ar": "arabic",
}

_QUERY_STOPWORDS: dict[TextLanguage, str] = {
    "en": """
a an and are as at be but by can could do does did for from had has have how i
if in into is it its me my no not of on or our please should so such tell than
that the their them then there these they this to up us was we were what when
where which who whom why will with would you your yours about any some
""",
    "fr": """
à a au aux avec ce ceci cela ces cet cette c ça dans de des du d elle elles en est et eux il
ils je j la le les leur leurs l lui ma mais me même mes moi mon m ne nos notre nous n on ou
où par pas pour qu que qui quoi quel quelle quels quelles quand comment pourquoi combien sa
se ses son s sur ta te tes toi ton tu t un une vos votre vous y sont suis es sommes êtes
était étaient être ai as avons avez ont avait avoir peut peux pouvez puis pourrais pourriez
voudrais voulez veux faut dois doit dites svp plaît sans celui celle ceux celles
""",
    "es": """
a al ante con de del desde durante en entre hacia hasta para por según sin sobre tras el la
lo los las un una unos unas y e o u ni pero que qué quien quién quienes cual cuál cuales
cuáles cuando cuándo donde dónde como cómo cuanto cuánto cuánta cuántos cuántas porque es
son soy eres somos está están estoy estás estamos estaba era eran fue ser estar hay ha han
he has hemos había tiene tienen tengo tienes puede pueden puedo puedes podría podrían quiero
quisiera me mi mis te tu tus ti se su sus nos nuestro nuestra nuestros nuestras le les yo él
ella ellos ellas usted ustedes nosotros este esta estos estas ese esa esos esas esto eso no
sí si muy más favor debo debe
""",
    "de": """
der die das den dem des ein eine einer eines einem einen und oder aber doch denn sondern
dass ob wenn als wie wo wann warum wieso weshalb was wer wen wem welche welcher welches
welchen welchem ist sind bin bist seid war waren wird werden wurde wurden sein haben hat
habe hast habt hatte hatten kann können kannst könnte könnten muss müssen soll sollte will
wollen möchte möchten darf dürfen ich mich mir du dich dir er sie es wir uns ihr euch ihnen
ihm ihn man mein meine meinen meinem meiner dein deine seine ihre ihren ihrem ihrer unser
unsere in im an am auf aus bei beim mit nach von vom zu zum zur für über unter vor durch
gegen ohne um bis seit nicht kein keine keinen noch schon auch nur sehr so da dort hier
gibt es bitte viel viele
""",
    "ar": """
في من إلى الى على عن مع هل ما ماذا متى أين اين كيف لماذا كم أي اي و أو او ثم لكن لا لم لن
إن ان أن هذا هذه ذلك تلك هو هي هم هن أنا انا نحن أنت انت أنتم التي الذي الذين كان كانت
يكون تكون هناك هنا عند لدى لدي لديكم لديك قد كل بعض غير أيضا ايضا جدا فقط يمكن يمكنني
يمكنك أريد اريد بين حتى منذ عليه عليها فيه فيها به بها له لها لكم لنا
""",
}

# Politeness and the words of an honest "I don't know", on top of the query stop words.
_NO_FACT: dict[TextLanguage, str] = {
    "en": """
a an the and or but if then so of to in on at by for from with without about as into over
under up down out off again further once here there when where why how all any both each few
more most other some such no nor not only own same than too very can will just should now is
are was were be been being have has had having do does did doing would could may might must
shall i me my we our you your he him his she her it its they them their what which who whom
this that these those am yes yeah sure ok okay please thank thanks hello hi welcome glad
happy help assist let know sorry afraid unfortunately however also well today information
details anything something get got tell say said like one ve ll re s t d m don doesn didn
isn aren wasn weren won can't cannot dont doesnt
""",
    "fr": """
oui non merci bonjour bonsoir bienvenue désolé désolée excusez pardon malheureusement
cependant aussi bien très aujourd hui information informations renseignement renseignements
détails quelque chose rien dire dit savoir sais sait connais aider aide volontiers
accord ok voilà alors donc été eu fait faire avoir tout tous toute toutes ici là
""",
    "es": """
hola gracias buenos buenas siento lo disculpe perdón desafortunadamente lamentablemente
información informaciones detalles algo nada decir dice saber sé sabe ayudar ayuda
bienvenido bienvenida claro vale ok hoy también sin embargo todo todos toda todas aquí allí
""",
    "de": """
ja nein danke hallo guten willkommen leider entschuldigung entschuldigen tut leid
information informationen auskunft details etwas nichts sagen weiß wissen helfen hilfe heute
gerne gern okay also jedoch alle alles ganz dazu darüber
""",
    "ar": """
نعم شكرا عفوا آسف اسف عذرا للأسف معلومات معلومة تفاصيل شيء أعرف اعرف مرحبا أهلا اهلا مساعدة
أساعد اليوم السلام عليكم سلام حسنا للاسف
""",
}

# Words that turn a statement into its opposite ("there is no parking"). Stop words for support
# (they name no fact), but a sentence that has one states something else than one that has none.
_NEGATIONS: dict[TextLanguage, str] = {
    "en": """
no not never none nothing nobody nowhere neither nor cannot cant dont doesnt didnt isnt arent
wasnt werent wont
""",
    "fr": "ne n pas jamais aucun aucune rien ni",
    "es": "no nunca jamás ningún ninguno ninguna nada nadie ni tampoco",
    "de": "nicht kein keine keinen keinem keiner keines nie niemals nichts niemand weder",
    "ar": "لا ليس ليست لم لن",
}

_INDEX_STOPWORDS = """
a an and are as at be but by for if in into is it no not of on or such that the their then
there these they this to was will with
"""
INDEX_STOPWORDS: Final = frozenset(_INDEX_STOPWORDS.split())
"""RediSearch's default stop words, which it leaves out of every index whatever the passage's
language: no query can find them, and a query must not hold them (RediSearch 2.10 crashes, SIGSEGV
in QueryNode_AddChildren, on ``@text:(is|it|vaccine)``: a union with two of them)."""

QUERY_STOPWORDS: Final[dict[TextLanguage, frozenset[str]]] = {
    lang: frozenset(words.split()) | INDEX_STOPWORDS for lang, words in _QUERY_STOPWORDS.items()
}
STOPWORDS: Final[dict[TextLanguage, frozenset[str]]] = {
    # English: the guard's own measured list as it was (it holds most query stop words already).
    lang: frozenset(words.split()) | (frozenset() if lang == "en" else QUERY_STOPWORDS[lang])
    for lang, words in _NO_FACT.items()
}

NEGATIONS: Final[dict[TextLanguage, frozenset[str]]] = {
    lang: frozenset(words.split()) for lang, words in _NEGATIONS.items()
}
"""Per language, the words that negate a statement (English also: any word ending in n't)."""

LETTERS: Final[dict[TextLanguage, frozenset[str]]] = {
    "en": frozenset(),
    "fr": frozenset("àâçèêëîïôœùûÿ"),
    "es": frozenset("áíóúñ¿¡"),
    "de": frozenset("äöüß"),
    "ar": frozenset(),  # told by its script (see text.detect_language)
}
