// The supervisor wallboard: numbers pushed over /ws/wallboard at least once a second: the
// queues and agents (cti), the service requests, dispatch and follow-ups (ticketing), today's
// service level and abandon rate per queue, the agents in wrap-up.
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

  var TILES = ["overdue_dispatch", "overdue_accept", "follow_ups_today", "follow_ups_today_late", "follow_ups_earlier"];
  var TILE_LABELS = {
    overdue_dispatch: "Not dispatched in time", overdue_accept: "Not accepted in time",
    follow_ups_today: "Follow-ups due today", follow_ups_today_late: "Late today",
    follow_ups_earlier: "Overdue from earlier days"
  };
  var ALARMS = { overdue_dispatch: true, overdue_accept: true, follow_ups_today_late: true, follow_ups_earlier: true };
  function percent(v) { return v === null || v === undefined ? "—" : v + "%"; }

  function sumRegions(regions, stages) {
    var total = { region: null, open_requests: 0, stages: {} };
    stages.forEach(function (s) { total.stages[s] = 0; });
    TILES.forEach(function (k) { total[k] = 0; });
    regions.forEach(function (r) {
      total.open_requests += r.open_requests;
      stages.forEach(function (s) { total.stages[s] += r.stages[s] || 0; });
      TILES.forEach(function (k) { total[k] += r[k]; });
    });
    return total;
  }
  function regionRow(tag, r, stages, name) {
    var row = el("tr", { "data-region": r.region === null ? "" : r.region });
    row.appendChild(el(tag, null, name));
    stages.forEach(function (s) {
      var n = r.stages[s] || 0;
      row.appendChild(el("td", { "data-stage": s, class: n ? null : "zero" }, n));
    });
    row.appendChild(el("td", { "data-figure": "open_requests" }, r.open_requests));
    ["overdue_dispatch", "overdue_accept", "follow_ups_today"].forEach(function (k) {
      row.appendChild(el("td", { "data-figure": k, class: ALARMS[k] && r[k] > 0 ? "alert-on" : (r[k] ? null : "zero") }, r[k]));
    });
    return row;
  }
  function renderBusiness(snap) {
    var business = snap.business;
    if (!business) { return; }
    var stages = business.stages, regions = business.regions, total = sumRegions(regions, stages);
    var headline = document.getElementById("wb-headline");
    headline.textContent = "";
    headline.appendChild(figure("open_requests", t("Open service requests"), total.open_requests));
    TILES.forEach(function (k) { headline.appendChild(figure(k, t(TILE_LABELS[k]), total[k], ALARMS[k] && total[k] > 0)); });
    headline.appendChild(figure("wrapup", t("Agents in wrap-up"), snap.wrapup ? snap.wrapup.count : 0));
    var head = document.querySelector("#wb-stages thead tr");
    if (head.getAttribute("data-stages") !== stages.join(",")) {
      head.textContent = "";
      head.setAttribute("data-stages", stages.join(","));
      head.appendChild(el("th", null, t("Region")));
      stages.forEach(function (s) { head.appendChild(el("th", { "data-stage": s }, t("stage:" + s))); });
      [t("Open"), t("Not dispatched in time"), t("Not accepted in time"), t("Follow-ups due today")].forEach(function (h) { head.appendChild(el("th", null, h)); });
    }
    var table = document.getElementById("wb-stages"), body = table.querySelector("tbody");
    body.textContent = "";
    regions.forEach(function (r) { body.appendChild(regionRow("td", r, stages, r.region === null ? t("No region") : r.region)); });
    var foot = table.querySelector("tfoot");
    if (foot) { table.removeChild(foot); }
    if (regions.length > 1) {
      foot = el("tfoot", null);
      foot.appendChild(regionRow("td", total, stages, t("Total")));
      table.appendChild(foot);
    }
  }
  function renderToday(snap) {
    var body = document.querySelector("#wb-today tbody");
    body.textContent = "";
    var rows = snap.queues_today || [];
    if (!rows.length) {
      var empty = el("tr", null); empty.appendChild(el("td", { class: "muted", colspan: "8" }, t("No calls today"))); body.appendChild(empty);
    }
    rows.forEach(function (q) {
      var row = el("tr", { "data-queue": q.queue });
      row.appendChild(el("td", null, q.queue));
      row.appendChild(el("td", { "data-figure": "offered" }, q.offered));
      row.appendChild(el("td", { "data-figure": "answered" }, q.answered));
      row.appendChild(el("td", { "data-figure": "abandoned" }, q.abandoned));
      row.appendChild(el("td", { "data-figure": "service_level", class: q.service_level !== null && q.service_level < 80 ? "alert-on" : null }, percent(q.service_level)));
      row.appendChild(el("td", { "data-figure": "abandon_rate", class: q.abandon_rate !== null && q.abandon_rate > 10 ? "alert-on" : null }, percent(q.abandon_rate)));
      row.appendChild(el("td", { class: "mono", "data-figure": "asa" }, q.asa === null ? "—" : clock(q.asa)));
      row.appendChild(el("td", { class: "mono", "data-figure": "longest_wait" }, q.longest_wait === null ? "—" : clock(q.longest_wait)));
      body.appendChild(row);
    });
  }
  function renderWrapup(snap) {
    var wrapup = snap.wrapup || { count: 0, names: [] };
    document.getElementById("wb-wrapup-count").textContent = String(wrapup.count);
    var list = document.getElementById("wb-wrapup");
    list.textContent = "";
    if (!wrapup.names.length) { list.appendChild(el("li", { class: "muted" }, t("Nobody"))); }
    wrapup.names.forEach(function (name) { list.appendChild(el("li", { "data-agent": name }, name)); });
  }
  function todayOf(snap, queue) {
    var found = null;
    (snap.queues_today || []).forEach(function (q) { if (q.queue === queue) { found = q; } });
    return found;
  }

  function render(snap) {
    renderBusiness(snap);
    renderToday(snap);
    renderWrapup(snap);
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
      if (q.agents.wrapup !== undefined) { grid.appendChild(figure("wrapup", t("Wrap-up"), q.agents.wrapup)); }
      grid.appendChild(figure("answered_today", t("Answered today"), q.answered_today));
      grid.appendChild(figure("abandoned_today", t("Abandoned today"), q.abandoned_today, q.abandoned_today > 0));
      var today = todayOf(snap, q.queue);
      if (today) {
        grid.appendChild(figure("abandon_rate", t("Abandon rate"), percent(today.abandon_rate), today.abandon_rate !== null && today.abandon_rate > 10));
      }
      card.appendChild(grid);
      queues.appendChild(card);
    });
    var agents = document.querySelector("#wb-agents tbody");
    agents.textContent = "";
    snap.agents.forEach(function (a) {
      var row = el("tr", { "data-member": a.member_name, "data-linkedid": a.linkedid || null });
      row.appendChild(el("td", null, a.member_name));
      row.appendChild(el("td", null, a.queue));
      var labels = { available: "Available", ringing: "Ringing", busy: "Busy", on_hold: "Busy", paused: "Paused", wrapup: "Wrap-up", unavailable: "Unavailable" };
      row.appendChild(el("td", { "data-state": a.state }, t(labels[a.state] || a.state) + (a.paused && a.pause_reason ? "（" + a.pause_reason + "）" : "")));
      row.appendChild(el("td", { class: "mono" }, clock(a.in_state_seconds)));
      row.appendChild(el("td", null, a.calls_taken));
      // Where the agent's desktop is open: a node name in a cluster, or just online.
      var desk = a.desktop || [];
      row.appendChild(el("td", { "data-desktop": desk.length ? "open" : "closed" },
        desk.length ? (desk.join(", ") === "local" ? t("Online") : desk.join(", ")) : t("Not open")));
      agents.appendChild(row);
    });
    if (snap.desktops_online !== undefined) {
      document.getElementById("wb-desktops").textContent = t("Desktops online") + " " + snap.desktops_online;
    }
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
