// Admin forms: each posts its fields as JSON to its data-url through hotline.api (CSRF header),
// shows the one-time password or SIP secret in the result line, and reloads otherwise.
(function () {
  "use strict";

  function fields(form) {
    var body = {};
    form.querySelectorAll("input[name], select[name]").forEach(function (input) {
      if (input.type === "checkbox") {
        body[input.name] = input.checked;
      } else if (input.value !== "" || input.type !== "password") {
        body[input.name] = input.type === "number" && input.value === "" ? null : input.value;
      }
    });
    var queues = form.querySelectorAll("[data-queue]");
    if (queues.length) {
      body.queues = [];
      queues.forEach(function (box) {
        if (!box.checked) { return; }
        var name = box.getAttribute("data-queue");
        var penalty = form.querySelector('[data-penalty-for="' + name + '"]');
        body.queues.push({ queue: name, penalty: Number(penalty ? penalty.value : 0) });
      });
    }
    return body;
  }

  function secrets(data) {
    var shown = [];
    if (data && data.password) { shown.push("初始密码 / password: " + data.password); }
    if (data && data.sip_secret) { shown.push("SIP 密码 / SIP secret: " + data.sip_secret); }
    if (data && data.token) { shown.push("API 令牌（只显示一次）/ API token (shown once): " + data.token); }
    if (data && data.secret) { shown.push("Webhook 密钥（只显示一次）/ webhook secret (shown once): " + data.secret); }
    if (data && data.pbx) { shown.push("PBX: " + data.pbx.detail); }
    return shown;
  }

  document.addEventListener("submit", async function (event) {
    var form = event.target.closest("[data-admin-form]");
    if (!form) { return; }
    event.preventDefault();
    var confirmText = form.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) { return; }
    var result = document.querySelector("[data-admin-result]");
    var method = form.getAttribute("data-method");
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    try {
      var data = await window.hotline.api(form.getAttribute("data-url"), {
        method: method, body: method === "DELETE" ? undefined : fields(form)
      });
      var shown = secrets(data);
      result.className = "admin-result ok";
      // Secrets are shown once: stay on the page until the admin has copied them.
      result.textContent = shown.length ? "已保存 / saved. " + shown.join(" · ") : "已保存 / saved";
      if (!(data && (data.password || data.sip_secret || data.token))) { window.location.reload(); }
    } catch (error) {
      result.className = "admin-result error";
      result.textContent = error.message;
    } finally {
      if (button) { button.disabled = false; }
    }
  });
}());
