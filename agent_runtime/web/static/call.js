// The call page: start a call (POST ../v1/calls), join its LiveKit room with the browser's
// microphone, play the agent's voice, and show live captions of both sides (the agent publishes
// them on the "lk.transcription" text stream). window.kubevoxCall exposes the call's state, for
// tests and for a host page that wants to follow it.
(() => {
  "use strict";
  const { Room, RoomEvent, Track } = window.LivekitClient;
  const $ = (id) => document.getElementById(id);
  const state = { phase: "idle", room: null, captions: [], agentAudioPeak: 0, error: null };
  window.kubevoxCall = state;

  function status(text) {
    $("status").textContent = text;
    $("status").dataset.phase = state.phase;
  }

  function caption(id, who, text, final) {
    let item = document.getElementById(`caption-${id}`);
    if (!item) {
      item = document.createElement("li");
      item.id = `caption-${id}`;
      item.className = who === "You" ? "you" : "agent";
      item.innerHTML = '<span class="who"></span><span class="text"></span>';
      item.querySelector(".who").textContent = `${who}:`;
      $("captions").appendChild(item);
      $("captions").scrollTop = $("captions").scrollHeight;
      state.captions.push({ id, who, text: "", final: false });
    }
    item.querySelector(".text").textContent = text;
    const entry = state.captions.find((c) => c.id === id);
    entry.text = text;
    entry.final = final;
  }

  // How loud the agent's voice is, measured in the page (what the caller actually receives).
  function measure(track) {
    const context = new AudioContext();
    const source = context.createMediaStreamSource(new MediaStream([track.mediaStreamTrack]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const tick = () => {
      if (state.phase !== "in call") { context.close(); return; }
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      state.agentAudioPeak = Math.max(state.agentAudioPeak, Math.sqrt(sum / samples.length));
      setTimeout(tick, 50);
    };
    tick();
  }

  async function start() {
    $("call").disabled = true;
    state.phase = "starting";
    status("Starting the call…");
    try {
      const response = await fetch("v1/calls", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ metadata: window.kubevoxMetadata || {} }),
      });
      const call = await response.json();
      if (!response.ok) throw new Error(call.error || `HTTP ${response.status}`);
      const room = new Room({ adaptiveStream: true, dynacast: true });
      state.room = room;
      room.on(RoomEvent.TrackSubscribed, (track) => {
        if (track.kind !== Track.Kind.Audio) return;
        track.attach($("agent-audio"));
        measure(track);
      });
      room.on(RoomEvent.Disconnected, () => end("The call has ended."));
      // One caption per segment (lk.segment_id): the agent streams its words into one stream
      // and marks it final in the stream's trailer; the caller's transcript comes as a stream
      // per update (interim, then final), each with the segment's whole text so far.
      room.registerTextStreamHandler("lk.transcription", async (reader, participant) => {
        const attrs = reader.info.attributes || {};
        const id = attrs["lk.segment_id"] || reader.info.id;
        const mine = attrs["lk.transcribed_track_id"] &&
          [...room.localParticipant.trackPublications.values()].some(
            (p) => p.trackSid === attrs["lk.transcribed_track_id"]);
        const who = mine || participant.identity === room.localParticipant.identity ? "You" : "Agent";
        let text = "";
        for await (const chunk of reader) {
          text += chunk;
          caption(id, who, text, false);
        }
        // the trailer's attributes are merged into reader.info once the stream has ended
        const final = (reader.info.attributes || {})["lk.transcription_final"] !== "false";
        caption(id, who, text, final);
      });
      await room.connect(call.url, call.token);
      await room.localParticipant.setMicrophoneEnabled(true);
      state.phase = "in call";
      $("hangup").disabled = false;
      status("In call. Speak to the assistant.");
    } catch (err) {
      state.error = String(err.message || err);
      end(`The call could not start: ${state.error}`);
    }
  }

  function end(message) {
    if (state.phase === "ended") return;
    state.phase = "ended";
    if (state.room) state.room.disconnect();
    $("hangup").disabled = true;
    $("call").disabled = false;
    status(message);
  }

  $("call").addEventListener("click", start);
  $("hangup").addEventListener("click", () => end("You hung up."));
})();
