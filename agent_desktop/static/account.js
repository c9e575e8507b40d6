// The own-password form: both new entries must match; the server applies the policy.
(function () {
  "use strict";
  var form = document.getElementById("password-form");
  if (!form) { return; }
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var error = form.querySelector("[data-password-error]");
    if (form.password.value !== form.confirm.value) {
      error.textContent = error.getAttribute("data-differ");
      return;
    }
    try {
      await window.hotline.api("/api/account/password", { method: "POST", body: {
        current_password: form.current_password.value, password: form.password.value } });
      window.location.assign("/");
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
}());
