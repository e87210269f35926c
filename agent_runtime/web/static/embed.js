// Puts the call page on another site's page: <script src="https://<gateway>/static/embed.js"
// async></script> where the call button should appear. The page runs in an iframe from the
// gateway, which needs the microphone (allow="microphone") and may play the voice (autoplay).
(() => {
  const script = document.currentScript;
  const frame = document.createElement("iframe");
  frame.src = new URL("../", script.src).href;
  frame.title = script.dataset.title || "Voice assistant";
  frame.allow = "microphone; autoplay";
  frame.style.cssText = "border:0;width:100%;max-width:40rem;height:" + (script.dataset.height || "28rem");
  script.after(frame);
})();
