// The import upload: sent by script with the CSRF header, so a large file streams to the
// server (a plain form post also works, for files up to 1 MB).
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form) { return; }
  var status = document.getElementById("import-status");
  var button = document.getElementById("import-submit");

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var meta = document.querySelector('meta[name="csrf-token"]');
    var data = new FormData(form);
    data.delete("_csrf");
    button.disabled = true;
    status.textContent = status.dataset.busy || "…";
    try {
      var response = await fetch("/api/admin/import", {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": meta ? meta.getAttribute("content") : "", Accept: "application/json" }
      });
      var body = null;
      try { body = await response.json(); } catch (ignored) { body = null; }
      if (!response.ok) {
        status.textContent = (body && body.message) || response.statusText;
        return;
      }
      window.location.assign(body.result_url);
    } finally {
      button.disabled = false;
    }
  });
}());
