// Ticketing pages: create a request, act on it (review), one-click assign and reassign
// (dispatch board), click-to-dial and results (follow-ups). Every write goes through the
// JSON API with hotline.api (CSRF header included); the page reloads to show the new state.
(function () {
  "use strict";

  function api(url, body) {
    return window.hotline.api(url, { method: "POST", body: body || {} });
  }

  function rowOf(element) {
    return element.closest("[data-row]") || element.closest("form") || document.body;
  }

  function showError(element, error) {
    var target = rowOf(element).querySelector("[data-error]");
    if (target) { target.textContent = error.message || String(error); }
  }

  function field(row, selector) {
    var input = row.querySelector(selector);
    return input ? input.value.trim() : "";
  }

  // One request id per click: an id the server has seen means "the same click again".
  function freshRequestId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "fu-" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  async function createRequest(form) {
    var body = { customer_id: Number(form.getAttribute("data-customer-id")) };
    new FormData(form).forEach(function (value, key) {
      value = String(value).trim();
      if (value === "") { return; }
      body[key] = /_id$/.test(key) ? Number(value) : value;
    });
    var created = await api("/api/tickets", body);
    window.location.assign("/tickets/" + created.id);
  }

  async function act(button) {
    var row = rowOf(button);
    var body = { action: button.getAttribute("data-ticket-action") };
    var reason = field(row, "[data-reason], #action-reason");
    var office = field(row, "[data-office], #action-office");
    if (button.hasAttribute("data-needs-reason") && !reason) {
      var error = row.querySelector("[data-error]");
      throw new Error(error ? error.getAttribute("data-msg-reason") : "reason?");
    }
    if (reason) { body.reason = reason; }
    if (office && body.action === "approve") { body.office = office; }
    await api(button.getAttribute("data-url"), body);
    window.location.reload();
  }

  async function assign(button) {
    var technician = Number(button.getAttribute("data-technician"));
    await api(button.getAttribute("data-assign"), { technician_id: technician });
    var flash = document.getElementById("dispatch-flash");
    var name = button.firstChild ? button.firstChild.textContent.trim() : "";
    if (flash) { flash.textContent = flash.getAttribute("data-msg-assigned").replace("{name}", name); }
    var tableRow = button.closest("tr");
    if (tableRow) { tableRow.remove(); }
    var count = document.getElementById("waiting-count");
    if (count) { count.textContent = String(Math.max(0, Number(count.textContent) - 1)); }
    // Loads changed: show the fresh board a moment later (the flash stays readable).
    window.setTimeout(function () { window.location.reload(); }, 1500);
  }

  // 抢单: one order offered to every technician on the board; the first to accept gets it.
  async function offer(button) {
    var ids = button.getAttribute("data-technicians").split(",").map(Number);
    await api(button.getAttribute("data-offer"), { technician_ids: ids });
    var flash = document.getElementById("dispatch-flash");
    if (flash) { flash.textContent = flash.getAttribute("data-msg-offered"); }
    var tableRow = button.closest("tr");
    if (tableRow) { tableRow.remove(); }
    window.setTimeout(function () { window.location.reload(); }, 1500);
  }

  async function reassign(button) {
    var row = rowOf(button);
    await api(button.getAttribute("data-reassign"), {
      technician_id: Number(field(row, "[data-technician-choice]")),
      reason: field(row, "[data-reason]")
    });
    window.location.reload();
  }

  async function attachCall(followUpId, callId) {
    // The real linkedid exists once Asterisk has created the channel; until then the log
    // row says "pending:<request id>". Give it a minute, then stop quietly.
    for (var i = 0; i < 30; i += 1) {
      await new Promise(function (done) { window.setTimeout(done, 2000); });
      var call = await window.hotline.api("/api/calls/" + callId);
      if (call.linkedid && call.linkedid.indexOf("pending:") !== 0) {
        await api("/api/follow-ups/" + followUpId + "/call", { linkedid: call.linkedid });
        return;
      }
    }
  }

  async function dial(button) {
    var row = rowOf(button);
    var status = row.querySelector(".dial-status");
    var result = await api(button.getAttribute("data-dial"), {
      phone_id: Number(button.getAttribute("data-phone-id")),
      request_id: freshRequestId()
    });
    if (status) { status.textContent = status.getAttribute("data-msg-dialling"); }
    // At the end of the call the agent may send the customer to the IVR survey.
    var survey = row.querySelector("[data-survey]");
    if (survey) {
      survey.setAttribute("data-call-id", String(result.call_id));
      survey.hidden = false;
    }
    var followUpId = button.getAttribute("data-follow-up-id");
    // A call from a request's page needs no attaching: the server linked it to the request.
    if (followUpId) { attachCall(followUpId, result.call_id).catch(function () {}); }
  }

  async function sendToSurvey(button) {
    var row = rowOf(button);
    await api("/api/calls/" + button.getAttribute("data-call-id") + "/survey", {});
    button.hidden = true;
    var status = row.querySelector(".dial-status");
    if (status) { status.textContent = button.getAttribute("data-msg-sent"); }
  }

  async function recordResult(button) {
    var row = rowOf(button);
    await api(button.getAttribute("data-result"), {
      score: Number(field(row, "[data-score]")),
      comment: field(row, "[data-comment]")
    });
    window.location.reload();
  }

  async function noAnswer(button) {
    await api(button.getAttribute("data-no-answer"), {});
    window.location.reload();
  }

  var HANDLERS = [
    ["[data-ticket-action]", act],
    ["[data-assign]", assign],
    ["[data-offer]", offer],
    ["[data-reassign]", reassign],
    ["[data-dial]", dial],
    ["[data-survey]", sendToSurvey],
    ["[data-result]", recordResult],
    ["[data-no-answer]", noAnswer]
  ];

  document.addEventListener("click", function (event) {
    HANDLERS.forEach(function (pair) {
      var button = event.target.closest(pair[0]);
      if (!button || button.disabled) { return; }
      event.preventDefault();
      button.disabled = true;
      pair[1](button).catch(function (error) {
        button.disabled = false;
        showError(button, error);
      });
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("#ticket-create");
    if (!form) { return; }
    event.preventDefault();
    var submit = form.querySelector("[type=submit]");
    submit.disabled = true;
    createRequest(form).catch(function (error) {
      submit.disabled = false;
      showError(submit, error);
    });
  });
})();
