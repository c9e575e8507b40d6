// Customer 360 editing (issue #17 §2): forms and buttons marked with data attributes send
// JSON through window.hotline.api (which adds the X-CSRF-Token header). A form or button
// with data-owner="customer:5" sends that record's version token, kept in #edit-data and
// updated from every reply, so a stale page gets the server's 409 instead of overwriting.
(function () {
  "use strict";

  var data = { versions: {}, saveAnyway: "Save anyway", saved: "Saved" };
  var block = document.getElementById("edit-data");
  if (block) {
    try { data = Object.assign(data, JSON.parse(block.textContent)); } catch (ignored) { /* keep defaults */ }
  }

  function collect(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.disabled || field.type === "submit" || field.type === "button") {
        return;
      }
      var value = field.value;
      if (field.name.slice(-2) === "[]") {
        var key = field.name.slice(0, -2);
        body[key] = body[key] || [];
        if (value.trim()) { body[key].push(value.trim()); }
        return;
      }
      if (field.type === "checkbox") {
        body[field.name] = field.checked;
      } else if (field.type === "number") {
        body[field.name] = value === "" ? null : Number(value);
      } else if (field.type === "date") {
        body[field.name] = value === "" ? null : value;
      } else {
        body[field.name] = value;
      }
    });
    return body;
  }

  function withVersion(element, body) {
    var owner = element.getAttribute("data-owner");
    if (owner && data.versions[owner]) { body.version = data.versions[owner]; }
    return body;
  }

  function remember(element, reply) {
    var owner = element.getAttribute("data-owner");
    if (owner && reply && reply.version) { data.versions[owner] = reply.version; }
  }

  function showError(form, failure, retry) {
    var slot = form.querySelector("[data-form-error]");
    if (!slot) { window.alert(failure.message); return; }
    slot.textContent = failure.message;
    if (failure.errorId === "phone_belongs_to_other_customer") {
      var again = document.createElement("button");
      again.type = "button";
      again.className = "link";
      again.setAttribute("data-save-anyway", "");
      again.textContent = data.saveAnyway;
      again.addEventListener("click", function () { retry(true); });
      slot.appendChild(document.createTextNode(" "));
      slot.appendChild(again);
    }
  }

  function phoneSaved(form, reply) {
    var target = document.getElementById(form.getAttribute("data-target"));
    if (target && reply.phone) {
      target.textContent = reply.phone.number;
      target.classList.add("saved");
      target.classList.toggle("revealed", !reply.phone.masked);
      target.setAttribute("title", data.saved);
      var reveal = target.parentNode.querySelector('[data-target="' + target.id + '"][data-reveal-url]');
      if (reveal && !reply.phone.masked) { reveal.remove(); }
    }
    var details = form.closest("details");
    if (details) { details.open = false; }
    form.reset();
  }

  async function submit(form, confirmed) {
    var question = form.getAttribute("data-confirm");
    if (question && !confirmed && !window.confirm(question)) { return; }
    var body = withVersion(form, collect(form));
    if (confirmed) { body.confirm_duplicate = true; }
    var slot = form.querySelector("[data-form-error]");
    if (slot) { slot.textContent = ""; }
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      var reply = await window.hotline.api(form.getAttribute("data-url"), {
        method: form.getAttribute("data-method") || "POST", body: body
      });
      remember(form, reply);
      var after = form.getAttribute("data-after");
      if (after === "phone") {
        phoneSaved(form, reply);
      } else if (after === "goto-target") {
        window.location.assign("/customers/" + reply.target_id);
      } else {
        window.location.reload();
      }
    } catch (failure) {
      showError(form, failure, function (yes) { submit(form, yes); });
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  async function act(button) {
    var question = button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { return; }
    button.disabled = true;
    try {
      var reply = await window.hotline.api(button.getAttribute("data-action-url"), {
        method: button.getAttribute("data-action-method") || "POST", body: withVersion(button, {})
      });
      remember(button, reply);
      window.location.reload();
    } catch (failure) {
      button.disabled = false;
      var form = button.closest("form");
      if (form) { showError(form, failure, function () { act(button); }); } else { window.alert(failure.message); }
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-edit]");
    if (!form) { return; }
    event.preventDefault();
    submit(form, false);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action-url]");
    if (!button) { return; }
    event.preventDefault();
    act(button);
  });
})();
