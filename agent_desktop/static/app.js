// Shared page helpers: JSON calls that carry the CSRF token, and the audited number reveal.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // fetch() for our JSON API: unsafe methods send X-CSRF-Token; errors throw with error_id.
  async function api(url, options) {
    options = options || {};
    var method = (options.method || "GET").toUpperCase();
    var headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    var body = options.body;
    if (method !== "GET" && method !== "HEAD") {
      headers["X-CSRF-Token"] = csrfToken();
    }
    if (body !== undefined && typeof body !== "string") {
      body = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    var response = await fetch(url, {
      method: method, headers: headers, body: body, credentials: "same-origin"
    });
    var data = null;
    try { data = await response.json(); } catch (ignored) { data = null; }
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    }
    if (!response.ok) {
      var error = new Error((data && data.message) || response.statusText);
      error.status = response.status;
      error.errorId = data && data.error_id;
      throw error;
    }
    return data;
  }

  async function reveal(button) {
    button.disabled = true;
    try {
      var data = await api(button.getAttribute("data-reveal-url"), { method: "POST", body: {} });
      var target = document.getElementById(button.getAttribute("data-target"));
      target.textContent = data.number;
      target.classList.add("revealed");
      button.remove();
    } catch (error) {
      button.disabled = false;
      button.title = error.message;
    }
  }

  // Call history: link a call to one of the customer's service requests by hand.
  async function linkCall(button) {
    var row = button.closest("[data-row]");
    var choice = row.querySelector("[data-request-choice]");
    var error = row.querySelector("[data-error]");
    button.disabled = true;
    try {
      await api(button.getAttribute("data-link-call"), {
        method: "POST", body: { service_request_id: Number(choice.value) }
      });
      window.location.reload();
    } catch (failure) {
      button.disabled = false;
      if (error) { error.textContent = failure.message; }
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-reveal-url]");
    if (button) {
      event.preventDefault();
      reveal(button);
      return;
    }
    var link = event.target.closest("[data-link-call]");
    if (link) {
      event.preventDefault();
      linkCall(link);
    }
  });

  window.hotline = Object.assign(window.hotline || {}, { api: api, csrfToken: csrfToken });
})();
