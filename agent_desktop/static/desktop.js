// The agent desktop's call panel (#call-panel). The CTI feature fills this in: it opens the
// WebSocket (authenticated by the session cookie, Origin checked) and renders the pops.
(function () {
  "use strict";
  window.hotline = window.hotline || {};
})();
