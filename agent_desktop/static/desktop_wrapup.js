// After-call work (话后处理): the countdown after a queue call and its one extension
// (agent_desktop/calls/wrapup.py). desktop.js hands over the socket's "wrapup" messages as
// "hotline:wrapup" events; a reloaded page (or a reconnect) asks GET /api/agent/wrapup.
(function () {
  "use strict";
  var H = window.hotline;
  var bar = document.getElementById("wrapup-bar");
  if (!bar) { return; }
  var countdown = document.getElementById("wrapup-countdown");
  var extendButton = document.getElementById("wrapup-extend");
  var extendedNote = document.getElementById("wrapup-extended");
  var current = null, deadline = 0, timer = null;

  function hide() {
    current = null;
    bar.hidden = true;
    bar.removeAttribute("data-call-id");
    clearInterval(timer);
    timer = null;
  }

  function tick() {
    var left = Math.max(0, deadline - Date.now() / 1000);
    countdown.textContent = H.clock(left);
    if (left <= 0) { hide(); }  // the server's wrapup.ended follows; nothing to wait for
  }

  function show(wrapup) {
    current = wrapup;
    // seconds_left, not the server's epoch: this browser's clock may be off.
    deadline = Date.now() / 1000 + Number(wrapup.seconds_left || 0);
    bar.hidden = false;
    bar.setAttribute("data-call-id", wrapup.call_id || "");
    extendButton.hidden = !(wrapup.can_extend && wrapup.call_id);
    extendedNote.hidden = !wrapup.extended;
    clearInterval(timer);
    timer = setInterval(tick, 250);
    tick();
  }

  function onMessage(message) {
    if (message.type === "wrapup") { show(message); }
    else if (message.type === "wrapup.ended" && (!current || current.linkedid === message.linkedid)) { hide(); }
  }

  async function load() {
    try {
      var data = await H.api("/api/agent/wrapup");
      if (data && data.wrapup) { show(data.wrapup); } else { hide(); }
    } catch (ignored) { /* the socket's next wrap-up message brings it */ }
  }

  extendButton.addEventListener("click", async function () {
    if (!current || !current.call_id) { return; }
    extendButton.disabled = true;
    try {
      var data = await H.api("/api/calls/" + current.call_id + "/wrap-up/extend", { method: "POST", body: {} });
      show(data.wrapup);
    } catch (error) {
      extendButton.title = error.message;
    } finally {
      extendButton.disabled = false;
    }
  });
  document.addEventListener("hotline:wrapup", function (event) { onMessage(event.detail); });
  document.addEventListener("hotline:hello", load);
  load();
}());
