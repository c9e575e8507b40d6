// The technician's mobile page (/m/<token>). Every action is queued in localStorage first and
// sent when the network allows, oldest first, each with its own id: the server applies an id
// once, so a resend after a lost reply changes nothing. A refusal (4xx) drops the action and
// says why; a network failure or 5xx keeps it for the next try.
(function () {
  "use strict";
  var page = JSON.parse(document.getElementById("field-state").textContent);
  var QUEUE_KEY = "hotline.field.queue." + page.base;
  var RETRY_MS = 4000;
  var state = page.state;
  var sending = false;

  function $(id) { return document.getElementById(id); }

  function newId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function loadQueue() {
    try { return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]"); } catch (e) { return []; }
  }

  function saveQueue(queue) {
    try {
      localStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
      return true;
    } catch (e) {
      showError("手机存储已满，请先联网发送已保存的操作。");
      return false;
    }
  }

  function show(el, text) { el.textContent = text; el.hidden = !text; }
  function showMessage(text) { show($("message"), text); }
  function showError(text) { show($("error"), text); }

  // What the page offers in a state: the machine's steps plus notes, parts and photos while
  // the order is being worked on (ticketing/mobile_view.py decides the same on the server).
  function allowed(s) {
    if (s.state === "offered") { return s.offer_state === "open" ? ["accept", "decline"] : []; }
    if (!s.mine) { return []; }
    var steps = Object.keys(page.machine[s.state] || {}).filter(function (a) {
      return a !== "reassign";
    });
    if (page.working.indexOf(s.state) >= 0) { steps = steps.concat(["note", "parts", "photo"]); }
    return steps;
  }

  var STEP_OF = { accept: "accept", decline: "decline", eta: "set_eta", arrive: "arrive", complete: "complete" };

  function predict(kind) {
    var step = STEP_OF[kind];
    if (!step) { return; }
    var next = (page.machine[state.state] || {})[step];
    if (!next) { return; }
    state = Object.assign({}, state, { state: next, mine: true, offer_state: null });
    if (kind === "decline") { state.mine = false; }
  }

  function render() {
    var can = state.allowed_now || allowed(state);
    document.querySelectorAll("[data-needs]").forEach(function (section) {
      section.hidden = can.indexOf(section.getAttribute("data-needs")) < 0;
    });
    var label = $("order-state");
    label.textContent = page.labels[state.state] || state.state;
    label.setAttribute("data-state", state.state);
    $("taken").hidden = !(state.offer_state === "lost" || (state.state !== "offered" && !state.mine && state.offer_state !== "declined"));
    $("declined").hidden = state.offer_state !== "declined";
    $("photo-count").textContent = String(state.photos || 0);
    var pending = loadQueue().length;
    $("sync-status").textContent = pending ? "离线保存，" + pending + " 项待发送" : "已同步";
    $("sync-status").setAttribute("data-pending", String(pending));
  }

  function enqueue(action) {
    action.action_id = newId();
    var queue = loadQueue();
    queue.push(action);
    if (!saveQueue(queue)) { return; }
    showError("");
    predict(action.kind);
    state.allowed_now = null;
    if (action.kind === "photo") { state.photos = (state.photos || 0) + 1; }
    render();
    flush();
  }

  function dataUrlToBytes(url) {
    var raw = atob(url.split(",")[1]);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function send(action) {
    if (action.kind === "photo") {
      return fetch(page.base + "/photos", {
        method: "POST",
        headers: { "Content-Type": "image/jpeg", "X-Action-Id": action.action_id },
        body: dataUrlToBytes(action.photo),
        credentials: "omit"
      });
    }
    return fetch(page.base + "/actions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(action),
      credentials: "omit"
    });
  }

  var REFUSALS = {
    work_order_taken: "此工单已被其他工程师接单。",
    illegal_work_order_transition: "当前状态不能执行此操作。",
    field_link_expired: "链接已过期，请联系办事处重新发送。",
    field_link_invalid: "链接无效。",
    not_your_work_order: "此工单已改派。",
    invalid_image: "照片无法识别，请重新拍摄。",
    upload_too_large: "照片太大。",
    signature_required: "请客户先签字。",
    reason_required: "请填写原因。"
  };

  function settle(response) {
    return response.json().then(function (body) {
      if (response.ok) {
        state = body;
        state.allowed_now = body.allowed;
        return true;
      }
      showError(REFUSALS[body.error_id] || body.message || "操作被拒绝。");
      return refresh().then(function () { return true; });
    }, function () { return response.status < 500; });
  }

  function flush() {
    if (sending) { return; }
    var queue = loadQueue();
    if (!queue.length) { render(); return; }
    sending = true;
    send(queue[0]).then(function (response) {
      if (response.status >= 500) { throw new Error("server " + response.status); }
      return settle(response);
    }).then(function (done) {
      sending = false;
      if (done) {
        var rest = loadQueue().slice(1);
        saveQueue(rest);
        if (!rest.length) { showMessage("已提交"); }
      }
      render();
      if (loadQueue().length) { flush(); }
    }).catch(function () {
      sending = false;
      render();
    });
  }

  function refresh() {
    return fetch(page.base + "/state", { credentials: "omit" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (body) {
      if (body) { state = body; state.allowed_now = body.allowed; }
      render();
    }, function () { render(); });
  }

  function locate() {
    return new Promise(function (resolve) {
      if (!navigator.geolocation) { resolve(null); return; }
      navigator.geolocation.getCurrentPosition(function (p) {
        resolve({ lat: p.coords.latitude, lng: p.coords.longitude, accuracy: p.coords.accuracy });
      }, function () { resolve(null); }, { timeout: 8000, maximumAge: 60000 });
    });
  }

  function shrinkPhoto(file) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onerror = reject;
      reader.onload = function () {
        var img = new Image();
        img.onerror = function () { reject(new Error("not an image")); };
        img.onload = function () {
          // Small enough to keep offline in localStorage; the server resizes again.
          var scale = Math.min(1, 1600 / Math.max(img.width, img.height));
          var canvas = document.createElement("canvas");
          canvas.width = Math.round(img.width * scale);
          canvas.height = Math.round(img.height * scale);
          canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
          resolve(canvas.toDataURL("image/jpeg", 0.85));
        };
        img.src = reader.result;
      };
      reader.readAsDataURL(file);
    });
  }

  function signaturePad(canvas) {
    var ctx = canvas.getContext("2d");
    var drawing = false;
    var strokes = 0;
    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    ctx.strokeStyle = "#111";
    function point(e) {
      var box = canvas.getBoundingClientRect();
      return { x: (e.clientX - box.left) * canvas.width / box.width, y: (e.clientY - box.top) * canvas.height / box.height };
    }
    canvas.addEventListener("pointerdown", function (e) {
      drawing = true;
      canvas.setPointerCapture(e.pointerId);
      var p = point(e);
      ctx.beginPath();
      ctx.moveTo(p.x, p.y);
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!drawing) { return; }
      var p = point(e);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      strokes += 1;
    });
    function stop() { drawing = false; }
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    return {
      signed: function () { return strokes > 2; },
      clear: function () { ctx.clearRect(0, 0, canvas.width, canvas.height); strokes = 0; },
      data: function () { return canvas.toDataURL("image/png"); }
    };
  }

  var pad = signaturePad($("signature-pad"));
  $("btn-clear-signature").addEventListener("click", pad.clear);

  $("btn-accept").addEventListener("click", function () { enqueue({ kind: "accept" }); });
  $("btn-decline").addEventListener("click", function () {
    var reason = $("decline-reason").value.trim();
    if (!reason) { showError("请填写拒单原因。"); return; }
    enqueue({ kind: "decline", text: reason });
  });
  $("btn-eta").addEventListener("click", function () {
    var eta = $("eta-time").value;
    if (!eta) { showError("请选择预计到达时间。"); return; }
    $("eta-shown").textContent = eta;
    enqueue({ kind: "eta", eta: eta });
  });
  $("btn-arrive").addEventListener("click", function () {
    $("btn-arrive").disabled = true;
    locate().then(function (position) {
      $("btn-arrive").disabled = false;
      enqueue({ kind: "arrive", position: position });
    });
  });
  $("btn-note").addEventListener("click", function () {
    var text = $("note-text").value.trim();
    if (!text) { return; }
    $("note-text").value = "";
    enqueue({ kind: "note", text: text });
  });
  $("btn-parts").addEventListener("click", function () {
    var text = $("parts-text").value.trim();
    if (!text) { return; }
    enqueue({ kind: "parts", text: text });
  });
  $("photo-input").addEventListener("change", function (e) {
    var file = e.target.files && e.target.files[0];
    if (!file) { return; }
    shrinkPhoto(file).then(function (dataUrl) {
      e.target.value = "";
      enqueue({ kind: "photo", photo: dataUrl });
    }, function () { showError("照片无法识别，请重新拍摄。"); });
  });
  $("btn-complete").addEventListener("click", function () {
    if (!pad.signed()) { showError("请客户先签字。"); return; }
    enqueue({ kind: "complete", text: $("complete-text").value.trim(), signature: pad.data() });
  });

  window.addEventListener("online", flush);
  window.setInterval(flush, RETRY_MS);
  state.allowed_now = state.allowed;
  render();
  flush();
})();
