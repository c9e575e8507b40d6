// Wallboard: listen / whisper / barge buttons on agents who are on a call (supervisors and
// admins). The wallboard redraws its agent rows every second, so the buttons are added again
// after each redraw; a click rings the supervisor's own phone (POST /api/calls/<id>/spy).
(function () {
  "use strict";
  var box = document.getElementById("wb-spy");
  if (!box) { return; }
  var MODES = ["listen", "whisper", "barge"];

  function requestId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function addButtons(row) {
    var linkedid = row.getAttribute("data-linkedid");
    if (!linkedid || row.querySelector(".wb-spy-buttons")) { return; }
    var group = document.createElement("span");
    group.className = "wb-spy-buttons";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", box.getAttribute("data-label"));
    MODES.forEach(function (mode) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.style.marginLeft = "0.5em";
      button.setAttribute("data-spy-mode", mode);
      button.setAttribute("data-spy-call", linkedid);
      button.textContent = box.getAttribute("data-" + mode);
      group.appendChild(button);
    });
    var cell = row.querySelector("td");
    if (cell) { cell.appendChild(group); }
  }

  function decorate() {
    document.querySelectorAll("#wb-agents tbody tr[data-linkedid]").forEach(addButtons);
  }

  function say(state, text) {
    box.hidden = false;
    box.setAttribute("data-state", state);
    box.textContent = text;
  }

  async function spy(button) {
    var linkedid = button.getAttribute("data-spy-call");
    var mode = button.getAttribute("data-spy-mode");
    button.disabled = true;
    try {
      await window.hotline.api("/api/calls/" + encodeURIComponent(linkedid) + "/spy", {
        method: "POST", body: { mode: mode, request_id: requestId() }
      });
      say("ok", box.getAttribute("data-ringing") + "（" + box.getAttribute("data-" + mode) + "）");
    } catch (error) {
      say("error", error.message);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-spy-mode]");
    if (button) {
      event.preventDefault();
      spy(button);
    }
  });

  var body = document.querySelector("#wb-agents tbody");
  if (body) {
    new MutationObserver(decorate).observe(body, { childList: true });
    decorate();
  }
})();
