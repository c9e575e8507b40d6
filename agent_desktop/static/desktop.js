// The agent desktop: pops over /ws (protocol v1, docs/websocket.md), the call panel
// (ringing → connected → wrap-up), quick-create, service requests, lists, shortcuts.
(function () {
  "use strict";
  var H = window.hotline, t = H.t, el = H.el;
  var root = document.getElementById("desktop");
  if (!root) { return; }
  var popsBox = document.getElementById("pops");
  var idle = document.getElementById("call-panel-idle");
  var pops = new Map();          // pop id → entry; dedupe and reconnect rebuild use it
  var acked = new Set();         // "id:stage" receipts already sent
  var members = [];
  var socket = null, retry = 0, pingTimer = null;

  // ---- WebSocket -------------------------------------------------------------------
  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(Object.assign({ v: 1 }, message)));
    }
  }

  function ack(popId, stage) {
    var key = popId + ":" + stage;
    if (acked.has(key)) { return; }
    acked.add(key);
    send({ type: "ack", pop_id: popId, stage: stage });
  }

  function wsStatus(state, text) {
    var node = document.getElementById("ws-status");
    node.setAttribute("data-state", state);
    node.textContent = text;
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    socket = new WebSocket(url);
    socket.addEventListener("open", function () {
      retry = 0;
      wsStatus("open", t("Connected to the server"));
      clearInterval(pingTimer);
      pingTimer = setInterval(function () { send({ type: "ping", t: Date.now() }); }, 25000);
    });
    socket.addEventListener("message", function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (ignored) { return; }
      handle(message);
    });
    socket.addEventListener("close", function () {
      clearInterval(pingTimer);
      wsStatus("closed", t("Reconnecting…"));
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 250 * Math.pow(2, retry - 1) + Math.random() * 250);
    });
  }

  function handle(message) {
    if (message.type === "hello") { onHello(message); document.dispatchEvent(new CustomEvent("hotline:hello")); }
    else if (message.type === "pop") { onPop(message.pop, true); }
    else if (message.type === "pop.update") { onUpdate(message); }
    else if (message.type === "agent.state") { onMember(message.member); }
    else if (message.type === "reminder") { onReminder(message); }
    else if (message.type === "wrapup" || message.type === "wrapup.ended") {
      document.dispatchEvent(new CustomEvent("hotline:wrapup", { detail: message }));  // desktop_wrapup.js
    }
  }

  // An SLA breach was just recorded: refresh the panel, and tell the user even in another tab.
  function onReminder(message) {
    refreshLists();
    if (window.Notification && Notification.permission === "granted") {
      try {
        new Notification(t(SLA_LABELS[message.breach] || "SLA breaches"),
          { body: "#" + message.request_id, tag: "sla-" + message.request_id + "-" + message.breach });
      } catch (ignored) { /* some browsers allow notifications only from a service worker */ }
    }
  }

  function onHello(message) {
    members = message.agent_state || [];
    renderMembers();
    var live = new Set();
    (message.pops || []).forEach(function (pop) { live.add(pop.id); onPop(pop, false); });
    // Gone while we were away: drop ringing/connected cards the server no longer has;
    // a card in wrap-up stays until the agent saves it.
    pops.forEach(function (entry, id) {
      if (!live.has(id) && entry.stage !== "wrapup") { removeCard(id, 0); }
      if (!live.has(id) && entry.stage === "connected") { setStage(entry, "wrapup"); }
    });
  }

  // ---- pops ------------------------------------------------------------------------
  function onPop(pop, fresh) {
    ack(pop.id, "delivered");
    var entry = pops.get(pop.id);
    if (entry) {
      entry.pop = Object.assign(entry.pop, pop);
      if (pop.match !== "pending") { renderBody(entry); }
    } else {
      entry = { pop: pop, stage: pop.state === "connected" ? "connected" : "ringing", customerId: null };
      pops.set(pop.id, entry);
      buildCard(entry);
      if (fresh) { alertAgent(pop); }
    }
    requestAnimationFrame(function () { ack(pop.id, "displayed"); });
  }

  function onUpdate(message) {
    var entry = pops.get(message.pop_id);
    if (!entry) { return; }
    if (message.state === "connected") {
      setStage(entry, "connected");
    } else if (message.state === "withdrawn") {
      setStage(entry, "withdrawn");
      removeCard(message.pop_id, 4000);
    } else if (message.state === "ended") {
      if (entry.stage === "connected") { setStage(entry, "wrapup"); refreshLists(); }
      else { setStage(entry, "ended"); removeCard(message.pop_id, 4000); }
    }
  }

  var STAGE_LABELS = { ringing: "Ringing", connected: "Connected", wrapup: "Wrap-up",
    withdrawn: "Withdrawn", ended: "Call ended" };

  function setStage(entry, stage) {
    entry.stage = stage;
    if (stage === "connected") { entry.connectedAt = Date.now(); }
    var card = entry.card;
    card.setAttribute("data-state", stage);
    card.querySelector(".pop-state").textContent = t(STAGE_LABELS[stage]);
    card.querySelector(".wrapup-form").hidden = !(stage === "connected" || stage === "wrapup");
  }

  function buildCard(entry) {
    var pop = entry.pop;
    var card = document.getElementById("pop-template").content.firstElementChild.cloneNode(true);
    card.id = "pop-" + pop.id;
    card.setAttribute("data-pop-id", pop.id);
    card.setAttribute("data-linkedid", pop.linkedid);
    entry.card = card;
    entry.ringAt = pop.rang_at ? Math.min(pop.rang_at * 1000, Date.now()) : Date.now();
    var caller = card.querySelector(".pop-caller");
    caller.appendChild(el("span", { class: "muted", text: t("Incoming call") + " " }));
    caller.appendChild(H.dialLink(pop.caller));
    card.querySelector(".pop-queue").textContent = pop.queue ? t("Queue") + " " + pop.queue : "";
    card.querySelector(".wrapup-form").addEventListener("submit", function (e) { e.preventDefault(); wrapUp(entry); });
    card.querySelector(".ticket-form").addEventListener("submit", function (e) { e.preventDefault(); createTicket(entry); });
    popsBox.prepend(card);
    idle.hidden = true;
    setStage(entry, entry.stage);
    renderBody(entry);
    lookupCall(entry, 1);
  }

  function renderBody(entry) {
    var pop = entry.pop, body = entry.card.querySelector(".pop-body");
    body.textContent = "";
    if (pop.match === "customer" && pop.customer_360) {
      showCustomer(entry, pop.customer_360);
      if ((pop.candidates || []).length > 1) { body.appendChild(H.candidatesChooser(pop.candidates, choose(entry))); }
    } else if (pop.match === "candidates") {
      body.appendChild(H.candidatesChooser(pop.candidates || [], choose(entry)));
    } else if (pop.match === "pending") {
      body.appendChild(el("p", { class: "muted", text: t("Looking up the call…") }));
    } else {
      body.appendChild(quickCreate(entry, pop.number || pop.caller));
    }
  }

  function showCustomer(entry, snapshot) {
    var body = entry.card.querySelector(".pop-body");
    var old = body.querySelector(".c360");
    var view = H.customer360(snapshot);
    if (old) { old.replaceWith(view); } else { body.prepend(view); }
    entry.customerId = snapshot.customer && snapshot.customer.id;
    var select = entry.card.querySelector(".ticket-form select[name=vehicle_id]");
    select.length = 1;
    (snapshot.vehicles || []).forEach(function (v) {
      select.appendChild(el("option", { value: v.id, text: [v.model, v.plate, v.vin].filter(Boolean).join(" ") }));
    });
    var description = entry.card.querySelector(".ticket-form textarea[name=description]");
    if (!description.value) {
      var name = (snapshot.customer && snapshot.customer.name) || "";
      description.value = t("Incoming call") + " " + H.mask(entry.pop.caller) + " " + name + "：";
    }
  }

  function choose(entry) {
    return async function (candidate) {
      var body = entry.card.querySelector(".pop-body");
      if (!candidate) {
        entry.customerId = null;
        body.textContent = "";
        body.appendChild(quickCreate(entry, entry.pop.caller));
        linkCall(entry, null);
        return;
      }
      var view = await H.api("/api/customers/" + candidate.customer_id);
      var box = body.querySelector(".candidates-box");
      showCustomer(entry, H.from360Api(view));
      if (box) { box.remove(); }
      linkCall(entry, candidate.customer_id);
    };
  }

  // ---- unknown caller: quick-create with a live duplicate warning -----------------
  function quickCreate(entry, number) {
    var form = document.getElementById("quick-create-template").content.firstElementChild.cloneNode(true);
    form.elements.phone.value = number || "";
    var warning = form.querySelector(".dup-warning"), timer = null, allow = false;
    function check() {
      clearTimeout(timer);
      timer = setTimeout(async function () {
        var name = form.elements.name.value.trim(), phone = form.elements.phone.value.trim();
        if (name.length < 2) { warning.hidden = true; return; }
        try {
          var found = await H.api("/api/customers/duplicates", { method: "POST", body: { name: name, phone: phone } });
          showDuplicates(warning, found);
        } catch (ignored) { warning.hidden = true; }
      }, 300);
    }
    form.elements.name.addEventListener("input", check);
    form.elements.phone.addEventListener("input", check);
    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      var status = form.querySelector(".form-status");
      try {
        var made = await H.api("/api/customers", { method: "POST", body: {
          name: form.elements.name.value, phone: form.elements.phone.value,
          city: form.elements.city.value, linkedid: entry.pop.linkedid, allow_duplicate: allow } });
        status.textContent = t("Customer created") + " " + made.code;
        var view = await H.api("/api/customers/" + made.id);
        form.remove();
        showCustomer(entry, H.from360Api(view));
        linkCall(entry, made.id);
      } catch (error) {
        if (error.errorId === "possible_duplicate") {
          allow = true;
          try {
            showDuplicates(warning, await H.api("/api/customers/duplicates", { method: "POST",
              body: { name: form.elements.name.value, phone: form.elements.phone.value } }));
          } catch (ignored) { warning.hidden = false; }
          form.querySelector("button[type=submit]").textContent = t("Create anyway");
        } else { status.textContent = error.message; }
      }
    });
    return form;
  }

  function showDuplicates(warning, found) {
    var list = found.duplicates || [];
    warning.textContent = "";
    if (!list.length && !found.hidden) { warning.hidden = true; return; }
    warning.appendChild(el("strong", { text: t("Possible duplicates") + "：" }));
    list.forEach(function (d) {
      warning.appendChild(el("a", { href: "/customers/" + d.customer_id, target: "_blank", class: "dup",
        text: d.name + "（" + d.code + "，" + Math.round(d.score) + "%）" }));
    });
    if (found.hidden) { warning.appendChild(el("span", { text: " +" + found.hidden + " " + t("in another scope") })); }
    warning.hidden = false;
  }

  // ---- the call row: wrap-up, linking, IVR key --------------------------------------
  async function lookupCall(entry, tries) {
    if (entry.callId) { return entry.callId; }
    for (var i = 0; i < tries; i++) {
      try {
        var call = await H.api("/api/calls/by-linkedid/" + encodeURIComponent(entry.pop.linkedid));
        entry.callId = call.id;
        entry.enteredAt = call.entered_at ? Date.parse(call.entered_at) : null;
        if (call.business_key) {
          entry.card.querySelector(".pop-ivr").textContent = t("IVR key") + " " + call.business_key;
        }
        return call.id;
      } catch (ignored) {
        await new Promise(function (resolve) { setTimeout(resolve, 400); });
      }
    }
    return null;
  }

  async function linkCall(entry, customerId) {
    var id = await lookupCall(entry, 5);
    if (id) {
      try { await H.api("/api/calls/" + id + "/customer", { method: "POST", body: { customer_id: customerId } }); }
      catch (ignored) { /* the call stays linked as the PBX saw it */ }
    }
  }

  async function wrapUp(entry) {
    var form = entry.card.querySelector(".wrapup-form"), status = form.querySelector(".form-status");
    status.textContent = t("Looking up the call…");
    var id = await lookupCall(entry, 8);
    if (!id) { status.textContent = t("The call is not in the log yet; try again in a moment"); return; }
    try {
      await H.api("/api/calls/" + id + "/wrap-up", { method: "POST",
        body: { disposition: form.elements.disposition.value, note: form.elements.note.value } });
      status.textContent = t("Processed");
      entry.card.classList.add("processed");
      if (entry.stage === "wrapup") { removeCard(entry.pop.id, 1500); }
      refreshLists();
    } catch (error) { status.textContent = error.message; }
  }

  async function createTicket(entry) {
    var form = entry.card.querySelector(".ticket-form"), status = form.querySelector(".form-status");
    if (!entry.customerId) { status.textContent = t("Choose a customer first"); return; }
    var body = { customer_id: entry.customerId, channel: "phone", call_linkedid: entry.pop.linkedid,
      category: form.elements.category.value, priority: form.elements.priority.value,
      description: form.elements.description.value };
    if (form.elements.vehicle_id.value) { body.vehicle_id = Number(form.elements.vehicle_id.value); }
    try {
      var made = await H.api("/api/tickets", { method: "POST", body: body });
      status.textContent = t("Service request created") + " " + (made.number || made.id);
      form.querySelector("button[type=submit]").disabled = true;
    } catch (error) { status.textContent = error.message; }
  }

  function removeCard(id, delay) {
    setTimeout(function () {
      var entry = pops.get(id);
      if (!entry) { return; }
      entry.card.remove();
      pops.delete(id);
      idle.hidden = pops.size > 0;
    }, delay);
  }

  // ---- sound and notification ---------------------------------------------------
  var audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.25].forEach(function (offset) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = 880;
        gain.gain.value = 0.15;
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + offset);
        osc.stop(audio.currentTime + offset + 0.15);
      });
    } catch (ignored) { /* no audio device: the visual pop still shows */ }
  }

  function alertAgent(pop) {
    beep();
    if (window.Notification && Notification.permission === "granted") {
      var who = (pop.customer_360 && pop.customer_360.customer.name) || H.mask(pop.caller);
      try {
        var note = new Notification(t("Incoming call"), { body: who, tag: pop.id });
        note.onclick = function () { window.focus(); note.close(); };
      } catch (ignored) { /* some platforms only allow notifications from a service worker */ }
    }
  }

  var notifyButton = document.getElementById("enable-notifications");
  if (!window.Notification || Notification.permission !== "default") { notifyButton.hidden = true; }
  notifyButton.addEventListener("click", function () {
    beep();  // a user gesture also unlocks WebAudio
    Notification.requestPermission().then(function () { notifyButton.hidden = true; });
  });

  // ---- timers -------------------------------------------------------------------
  setInterval(function () {
    pops.forEach(function (entry) {
      var timer = entry.card.querySelector(".pop-timer"), now = Date.now();
      if (entry.stage === "ringing") {
        var since = entry.enteredAt || entry.ringAt;
        timer.textContent = t("Waiting") + " " + H.clock((now - since) / 1000);
      } else if (entry.stage === "connected") {
        timer.textContent = t("Talking") + " " + H.clock((now - entry.connectedAt) / 1000);
      }
    });
    renderMembers();
  }, 1000);

  // ---- agent state and pause ------------------------------------------------------
  function onMember(member) {
    members = members.filter(function (m) { return m.queue !== member.queue; });
    members.push(member);
    renderMembers();
  }

  var STATE_LABELS = { available: "Available", paused: "Paused", busy: "Busy", on_hold: "Busy",
    ringing: "Ringing", unavailable: "Unavailable", wrapup: "After-call work" };

  function renderMembers() {
    var box = document.getElementById("agent-state");
    box.textContent = "";
    if (!members.length) { box.textContent = t("Not in any queue"); return; }
    var paused = false;
    members.forEach(function (m) {
      paused = paused || m.paused;
      var text = m.queue + "：" + t(STATE_LABELS[m.state] || m.state) +
        (m.paused && m.pause_reason ? "（" + m.pause_reason + "）" : "") +
        " " + H.clock(Date.now() / 1000 - m.since);
      box.appendChild(el("span", { class: "member badge", "data-state": m.state, text: text }));
    });
    document.getElementById("pause-toggle").hidden = paused;
    document.getElementById("resume").hidden = !paused;
  }

  async function setPaused(paused) {
    var reason = document.getElementById("pause-reason").value;
    try { await H.api("/api/agent/pause", { method: "POST", body: { paused: paused, reason: reason } }); }
    catch (error) { wsStatus("error", error.message); }
  }
  document.getElementById("pause-form").addEventListener("submit", function (e) { e.preventDefault(); setPaused(true); });
  document.getElementById("resume").addEventListener("click", function () { setPaused(false); });

  // ---- click-to-dial on every number -------------------------------------------
  function requestId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return "d-" + Date.now() + "-" + Math.random().toString(36).slice(2);
  }
  document.addEventListener("click", async function (event) {
    var link = event.target.closest("[data-dial]");
    if (!link) { return; }
    event.preventDefault();
    var customer = link.getAttribute("data-customer-id");
    link.classList.add("dialling");
    link.title = t("Dialling…");
    try {
      await H.api("/api/dial", { method: "POST", body: { number: link.getAttribute("data-dial"),
        request_id: requestId(), customer_id: customer ? Number(customer) : null } });
    } catch (error) { link.title = t("Dial failed") + ": " + error.message; link.classList.add("failed"); }
    setTimeout(function () { link.classList.remove("dialling"); }, 3000);
  });

  // ---- lists and reminders --------------------------------------------------------
  var SLA_LABELS = { response: "Response overdue", resolution: "Resolution overdue", dispatch: "Dispatch overdue",
    accept: "Acceptance overdue", follow_up: "Follow-up overdue" };
  function fill(id, items, render) {
    var list = document.getElementById(id);
    list.textContent = "";
    if (!items.length) { list.appendChild(el("li", { class: "muted", text: t("Nothing due") })); }
    items.forEach(function (item) { list.appendChild(render(item)); });
  }
  function when(iso) { return String(iso || "").slice(5, 16).replace("T", " "); }

  function miniWrapUp(call) {
    var select = el("select", { name: "disposition" });
    document.querySelector("#pop-template").content.querySelectorAll("select[name=disposition] option")
      .forEach(function (o) { select.appendChild(o.cloneNode(true)); });
    var note = el("input", { name: "note", maxlength: 2000, required: true });
    var form = el("form", { class: "mini-wrapup" }, select, note, el("button", { type: "submit", title: t("Wrap-up"), text: "✓" }));
    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      try {
        await H.api("/api/calls/" + call.id + "/wrap-up", { method: "POST", body: { disposition: select.value, note: note.value } });
        refreshLists();
      } catch (error) { note.title = error.message; note.classList.add("invalid"); }
    });
    return form;
  }

  async function refreshLists() {
    try {
      var mine = await H.api("/api/calls/unprocessed");
      fill("unprocessed-list", mine.mine || [], function (c) {
        return el("li", { "data-call-id": c.id }, el("span", { class: "mono", text: when(c.entered_at) }), " ",
          H.dialLink(c.number, c.customer_id), c.recording_path ? H.playButton(c.id) : null, miniWrapUp(c));
      });
      var back = await H.api("/api/calls/callbacks");
      fill("callback-list", back.calls || [], function (c) {
        var done = el("button", { type: "button", class: "link", text: t("Called back") });
        done.addEventListener("click", async function () {
          await H.api("/api/calls/" + c.id + "/called-back", { method: "POST", body: {} });
          refreshLists();
        });
        return el("li", { "data-call-id": c.id }, el("span", { class: "mono", text: when(c.entered_at) }), " ",
          H.outcomeLabel(c.outcome), " ", c.customer_name || "", " ", H.dialLink(c.number, c.customer_id), " ", done);
      });
      var due = await H.api("/api/desktop/reminders");
      fill("reminder-callbacks", due.callbacks, function (c) {
        return el("li", null, t("Call back") + " ", c.customer_name || "", " ", H.dialLink(c.number, c.customer_id));
      });
      fill("reminder-followups", due.follow_ups, function (f) {
        return el("li", null, t("Follow-up due") + " #" + f.request_id + " " + when(f.due_at));
      });
      fill("reminder-birthdays", due.birthdays, function (b) {
        return el("li", null, "🎂 " + b.birthday + " " + b.contact + " · ",
          el("a", { href: "/customers/" + b.customer_id, text: b.customer }));
      });
      fill("reminder-sla", due.sla || [], function (b) {
        return el("li", { class: "overdue", "data-request-id": b.request_id }, "⏰ " + t(SLA_LABELS[b.kind] || b.kind) + " ",
          el("a", { href: "/tickets/" + b.request_id, text: b.number || "#" + b.request_id }),
          " " + when(b.due_at));
      });
    } catch (ignored) { /* shown again on the next refresh */ }
  }

  // ---- global search ----------------------------------------------------------------
  var search = document.getElementById("desk-search"), searchTimer = null;
  search.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async function () {
      var q = search.value.trim(), list = document.getElementById("desk-search-results");
      list.textContent = "";
      if (!q) { return; }
      try {
        var found = await H.api("/api/customers/search?q=" + encodeURIComponent(q));
        if (!found.hits.length) { list.appendChild(el("li", { class: "muted", text: t("No matches") })); }
        found.hits.slice(0, 10).forEach(function (hit) {
          list.appendChild(el("li", null, el("a", { href: "/customers/" + hit.customer_id, text: hit.name }),
            " ", el("span", { class: "muted", text: hit.code + " · " + hit.detail })));
        });
      } catch (error) { list.appendChild(el("li", { class: "muted", text: error.message })); }
    }, 250);
  });
  search.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { location.assign("/customers/search?q=" + encodeURIComponent(search.value)); }
  });

  // ---- keyboard shortcuts ---------------------------------------------------------
  function activeEntry() {
    var first = popsBox.querySelector(".pop");
    return first ? pops.get(first.getAttribute("data-pop-id")) : null;
  }
  document.addEventListener("keydown", function (e) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (e.key === "/" && !typing) { e.preventDefault(); search.focus(); return; }
    if (e.key === "Escape") { document.activeElement.blur(); return; }
    if (!e.altKey) { return; }
    var entry = activeEntry(), key = e.key.toLowerCase();
    if (key === "p") { e.preventDefault(); setPaused(document.getElementById("resume").hidden); }
    else if (key === "w" && entry) { e.preventDefault(); entry.card.querySelector(".wrapup-form textarea").focus(); }
    else if (key === "n" && entry) {
      e.preventDefault();
      var box = entry.card.querySelector(".ticket-box");
      box.open = true;
      box.querySelector("textarea").focus();
    } else if (key === "a" && entry) {
      var button = entry.card.querySelector(".candidates .choose");
      if (button) { e.preventDefault(); button.click(); }
    }
  });

  connect();
  refreshLists();
  setInterval(refreshLists, 30000);
})();
