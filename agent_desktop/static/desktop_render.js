// Rendering helpers for the agent desktop: DOM building (never innerHTML with data),
// number masking, and the customer 360 / candidates views of a pop payload.
(function () {
  "use strict";
  var stringsNode = document.getElementById("desk-strings");
  var STRINGS = stringsNode ? JSON.parse(stringsNode.textContent || "{}") : {};

  function t(msgid) { return STRINGS[msgid] || msgid; }

  // el("div", {class: "x", "data-a": 1}, child, "text", ...)
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) { return; }
      if (key === "text") { node.textContent = String(value); }
      else { node.setAttribute(key, value === true ? "" : String(value)); }
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) { continue; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // 13905581234 → 139****1234; +86 prefixes and short numbers handled.
  function mask(number) {
    var digits = String(number || "").replace(/^\+?86/, "");
    if (digits.length < 7) { return digits; }
    return digits.slice(0, 3) + "****" + digits.slice(-4);
  }

  // A number the agent can click to dial; the digits stay masked on screen.
  function dialLink(number, customerId) {
    if (!number) { return el("span", { class: "muted", text: "—" }); }
    return el("a", {
      href: "#", class: "dial number", "data-dial": number,
      "data-customer-id": customerId || null, title: t("Dial")
    }, mask(number) + " ☎");
  }

  function section(title, items, render) {
    if (!items || !items.length) { return null; }
    var list = el("ul", { class: "plain" });
    items.forEach(function (item) { list.appendChild(render(item)); });
    return el("div", { class: "c360-section" }, el("h4", { text: title }), list);
  }

  function phonesOf(owner, customerId) {
    var span = el("span", { class: "phones" });
    (owner.phones || []).forEach(function (phone) {
      span.appendChild(dialLink(phone.e164, customerId));
      span.appendChild(document.createTextNode(" "));
    });
    return span;
  }

  function customer360(snapshot) {
    var c = snapshot.customer || {};
    var head = el("div", { class: "c360-head" },
      el("strong", { class: "customer-name", text: c.name }),
      " ", el("span", { class: "muted mono", text: c.code || "" }),
      c.vip_level ? el("span", { class: "badge vip", text: "VIP" + c.vip_level }) : null,
      c.blocked ? el("span", { class: "badge warn", text: "⛔" }) : null,
      " ", el("span", { class: "muted", text: [c.region, c.province, c.city].filter(Boolean).join(" · ") }),
      c.owner_name ? el("span", { class: "muted", text: " · " + t("Owner") + ": " + c.owner_name }) : null,
      " ", el("a", { href: "/customers/" + c.id, target: "_blank", text: t("Open customer file") })
    );
    var box = el("div", { class: "c360", "data-customer-id": c.id }, head, phonesOf(c, c.id));
    [
      section(t("Contacts"), snapshot.contacts, function (x) {
        return el("li", null, el("span", { text: x.name + (x.title ? "（" + x.title + "）" : "") }),
          x.birthday ? el("span", { class: "muted", text: " 🎂" + String(x.birthday).slice(5) }) : null,
          " ", phonesOf(x, c.id));
      }),
      section(t("Vehicles"), snapshot.vehicles, function (v) {
        return el("li", { class: "mono" }, [v.model, v.plate, v.vin].filter(Boolean).join(" · "),
          v.warranty_end ? el("span", { class: "muted", text: " · " + t("Warranty until") + " " + v.warranty_end }) : null);
      }),
      section(t("Open service requests"), snapshot.open_requests, function (r) {
        return el("li", null, el("span", { class: "mono", text: r.number || ("#" + r.id) }), " ",
          el("span", { text: [r.state, r.category, (r.description || "").slice(0, 40)].filter(Boolean).join(" · ") }));
      }),
      section(t("Recent calls"), snapshot.recent_calls, function (call) {
        return el("li", null, el("span", { class: "mono", text: String(call.at || "").slice(0, 16).replace("T", " ") }),
          " ", t(call.direction === "outbound" ? "Outbound" : "Inbound"),
          " · ", outcomeLabel(call.outcome),
          call.disposition ? " · " + t("disposition." + call.disposition) : "",
          call.has_recording ? playButton(call.id) : null);
      }),
      section(t("Activities"), snapshot.activities, function (a) {
        return el("li", null, el("span", { class: "mono", text: String(a.occurred_at || "").slice(0, 10) }),
          " ", a.subject || a.kind);
      })
    ].forEach(function (part) { if (part) { box.appendChild(part); } });
    return box;
  }

  // The recording plays in place. The server decides whether this user may hear it (and
  // audits the playback); a refusal or a file still being ingested shows its message.
  function playButton(callId) {
    var holder = el("span", { class: "call-recording" });
    var button = el("button", { type: "button", class: "link play-recording", "data-call-id": callId, text: "▶ " + t("Play recording") });
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        var found = await window.hotline.api("/api/recordings/by-call/" + callId);
        var audio = el("audio", { controls: "controls", src: "/api/recordings/" + found.id + "/audio" });
        holder.replaceChildren(audio);
        audio.play().catch(function () { /* autoplay refused: the controls are there */ });
      } catch (error) {
        holder.replaceChildren(el("span", { class: "muted", text: error.message }));
      }
    });
    holder.appendChild(button);
    return holder;
  }

  function outcomeLabel(outcome) {
    var labels = { answered: "Answered", missed: "Missed", abandoned: "Abandoned" };
    return t(labels[outcome] || outcome || "");
  }

  // The ranked chooser; onChoose(candidate | null) — null is "a different caller".
  function candidatesChooser(candidates, onChoose) {
    var list = el("ol", { class: "candidates" });
    candidates.forEach(function (cand, index) {
      var button = el("button", { type: "button", class: "choose", "data-index": index, text: t("Choose") });
      button.addEventListener("click", function () { onChoose(cand); });
      list.appendChild(el("li", { "data-customer-id": cand.customer_id },
        el("strong", { text: cand.customer_name }), " ",
        el("span", { class: "muted mono", text: cand.customer_code }),
        cand.contact_name ? el("span", { class: "muted", text: " · " + cand.contact_name }) : null,
        cand.vip_level ? el("span", { class: "badge vip", text: "VIP" + cand.vip_level }) : null,
        el("span", { class: "muted", text: " · " + cand.match }), " ", button));
    });
    var other = el("button", { type: "button", class: "link different-caller", text: t("A different caller") });
    other.addEventListener("click", function () { onChoose(null); });
    return el("div", { class: "candidates-box" },
      el("p", { class: "muted", text: t("Several customers have this number") }), list, other);
  }

  // The /api/customers/{id} view (masked numbers) → the pop's 360 shape.
  function from360Api(view) {
    var c = Object.assign({}, view.customer, { owner_name: view.owner_name, phones: [] });
    return {
      customer: c,
      contacts: (view.contacts || []).map(function (x) { return Object.assign({}, x, { phones: [] }); }),
      vehicles: view.vehicles || [],
      activities: view.activities || [],
      recent_calls: []
    };
  }

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  window.hotline = Object.assign(window.hotline || {}, {
    t: t, el: el, mask: mask, dialLink: dialLink, customer360: customer360,
    candidatesChooser: candidatesChooser, from360Api: from360Api, clock: clock,
    outcomeLabel: outcomeLabel, playButton: playButton
  });
})();
