// The supervisor wallboard: numbers pushed over /ws/wallboard at least once a second.
(function () {
  "use strict";
  var node = document.getElementById("wb-strings");
  var STRINGS = node ? JSON.parse(node.textContent || "{}") : {};
  function t(m) { return STRINGS[m] || m; }
  var retry = 0, lastAt = 0;

  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== null) { n.setAttribute(k, attrs[k]); } });
    if (text !== undefined) { n.textContent = String(text); }
    return n;
  }
  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds || 0));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    return (h ? h + ":" + (m < 10 ? "0" : "") : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }
  function figure(key, label, value, alarm) {
    var box = el("div", { class: "wb-figure" + (alarm ? " alert-on" : ""), "data-figure": key });
    box.appendChild(el("span", { class: "value" }, value));
    box.appendChild(el("span", { class: "label" }, label));
    return box;
  }

  function render(snap) {
    var queues = document.getElementById("wb-queues");
    queues.textContent = "";
    snap.queues.forEach(function (q) {
      var card = el("section", { class: "card wb-queue", "data-queue": q.queue });
      var title = el("h2", null);
      title.appendChild(el("span", null, t("Queue") + " " + q.queue));
      card.appendChild(title);
      var grid = el("div", { class: "wb-figures" });
      grid.appendChild(figure("waiting", t("Waiting"), q.waiting, q.waiting > 0));
      grid.appendChild(figure("longest_wait", t("Longest wait"), clock(q.longest_wait), q.longest_wait > snap.service_level_seconds));
      grid.appendChild(figure("service_level", t("Service level") + "（" + snap.service_level_seconds + "s）",
        q.service_level === null ? "—" : q.service_level + "%", q.service_level !== null && q.service_level < 80));
      grid.appendChild(figure("available", t("Available"), q.agents.available));
      grid.appendChild(figure("ringing", t("Ringing"), q.agents.ringing));
      grid.appendChild(figure("busy", t("Busy"), q.agents.busy));
      grid.appendChild(figure("paused", t("Paused"), q.agents.paused));
      grid.appendChild(figure("answered_today", t("Answered today"), q.answered_today));
      grid.appendChild(figure("abandoned_today", t("Abandoned today"), q.abandoned_today, q.abandoned_today > 0));
      card.appendChild(grid);
      queues.appendChild(card);
    });
    var agents = document.querySelector("#wb-agents tbody");
    agents.textContent = "";
    snap.agents.forEach(function (a) {
      var row = el("tr", { "data-member": a.member_name });
      row.appendChild(el("td", null, a.member_name));
      row.appendChild(el("td", null, a.queue));
      var labels = { available: "Available", ringing: "Ringing", busy: "Busy", on_hold: "Busy", paused: "Paused", unavailable: "Unavailable" };
      row.appendChild(el("td", { "data-state": a.state }, t(labels[a.state] || a.state) + (a.paused && a.pause_reason ? "（" + a.pause_reason + "）" : "")));
      row.appendChild(el("td", { class: "mono" }, clock(a.in_state_seconds)));
      row.appendChild(el("td", null, a.calls_taken));
      agents.appendChild(row);
    });
    var unprocessed = document.querySelector("#wb-unprocessed tbody");
    unprocessed.textContent = "";
    if (!snap.unprocessed.length) {
      var empty = el("tr", null); empty.appendChild(el("td", { class: "muted", colspan: "2" }, t("No calls"))); unprocessed.appendChild(empty);
    }
    snap.unprocessed.forEach(function (u) {
      var row = el("tr", { "data-user-id": u.user_id });
      row.appendChild(el("td", null, u.display_name + "（" + u.username + "）"));
      row.appendChild(el("td", null, u.unprocessed));
      unprocessed.appendChild(row);
    });
    lastAt = snap.at;
    document.getElementById("wb-updated").textContent = new Date(snap.at * 1000).toLocaleTimeString();
  }

  function status(state, text) {
    var n = document.getElementById("wb-status");
    n.setAttribute("data-state", state);
    n.textContent = text;
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/wallboard";
    var ws = new WebSocket(url);
    ws.addEventListener("open", function () { retry = 0; status("open", t("Connected to the server")); });
    ws.addEventListener("message", function (e) {
      var snap;
      try { snap = JSON.parse(e.data); } catch (ignored) { return; }
      if (snap.type === "wallboard" && snap.at >= lastAt) { render(snap); }
    });
    ws.addEventListener("close", function () {
      status("closed", t("Reconnecting…"));
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 250 * Math.pow(2, retry - 1));
    });
  }
  connect();
})();
