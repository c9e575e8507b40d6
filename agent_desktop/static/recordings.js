// Recording review: list with filters, player with waveform click-to-seek and speed,
// QA scorecard with comments pinned to a time. No inline script (CSP).
"use strict";
(function () {
  const page = document.getElementById("rec-page");
  if (!page) return;
  const zh = page.dataset.lang === "zh_CN";
  const T = (a, b) => (zh ? a : b);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const audio = document.getElementById("rec-audio");
  const canvas = document.getElementById("rec-wave");
  let current = null;
  let comments = [];

  const fmt = (s) => {
    s = Math.max(0, Math.floor(s || 0));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  };
  async function api(path, options) {
    const init = Object.assign({ credentials: "same-origin", headers: { Accept: "application/json" } }, options || {});
    if (init.body) {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = csrf;
    }
    const response = await fetch(path, init);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.message || response.status);
    return body;
  }
  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
  }

  async function search(event) {
    if (event) event.preventDefault();
    const form = new FormData(document.getElementById("rec-filters"));
    const params = new URLSearchParams();
    for (const [k, v] of form.entries()) if (v) params.set(k, v);
    const body = await api("/api/recordings?" + params.toString());
    const tbody = document.querySelector("#rec-list tbody");
    tbody.textContent = "";
    for (const r of body.recordings) {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      cell(tr, r.ended_at ? new Date(r.ended_at).toLocaleString(zh ? "zh-CN" : "en") : "");
      cell(tr, r.agent_name);
      cell(tr, r.customer_name || T("未知来电", "Unknown caller"));
      cell(tr, r.queue);
      cell(tr, fmt(r.duration_seconds));
      cell(tr, r.qa_score == null ? "—" : r.qa_score);
      cell(tr, r.survey_score == null ? "—" : r.survey_score);
      cell(tr, r.service_request_id || "");
      if (!r.playable) tr.classList.add("muted");
      tr.addEventListener("click", () => open(r.id));
      tbody.appendChild(tr);
    }
    document.getElementById("rec-empty").hidden = body.recordings.length > 0;
  }

  function drawWave() {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const peaks = (current && current.peaks) || [];
    const max = Math.max(1, ...peaks);
    const played = audio.duration ? audio.currentTime / audio.duration : 0;
    peaks.forEach((p, i) => {
      const x = (i / peaks.length) * w;
      const bar = Math.max(1, (p / max) * (h - 4));
      ctx.fillStyle = i / peaks.length <= played ? "#3a6fd8" : "#9bb3de";
      ctx.fillRect(x, (h - bar) / 2, Math.max(1, w / peaks.length - 0.5), bar);
    });
    for (const pause of (current && current.pauses) || []) {
      if (pause.from == null || !current.duration_seconds) continue;
      const from = (pause.from / current.duration_seconds) * w;
      const to = ((pause.to == null ? current.duration_seconds : pause.to) / current.duration_seconds) * w;
      ctx.fillStyle = "rgba(200,60,60,.2)";
      ctx.fillRect(from, 0, Math.max(2, to - from), h);
    }
  }

  function seekTo(seconds) {
    audio.currentTime = Math.max(0, seconds);
    drawWave();
  }
  canvas.addEventListener("click", (event) => {
    const rect = canvas.getBoundingClientRect();
    const fraction = (event.clientX - rect.left) / rect.width;
    const total = audio.duration || (current && current.duration_seconds) || 0;
    seekTo(fraction * total);
  });
  audio.addEventListener("timeupdate", () => {
    document.getElementById("rec-time").textContent = fmt(audio.currentTime) + " / " + fmt(audio.duration);
    drawWave();
  });
  document.getElementById("rec-speed").addEventListener("change", (e) => {
    audio.playbackRate = Number(e.target.value);
  });

  // The current score first, then the history it corrected (newest first). A submitted
  // scorecard never changes: a correction is a new version naming the one it corrects.
  function showReviews(reviews) {
    const box = document.getElementById("rec-reviews");
    box.textContent = "";
    const versionOf = new Map(reviews.map((r) => [r.id, r.version]));
    for (const r of reviews.slice().reverse()) {
      const div = document.createElement("div");
      div.className = r.corrected_by ? "rec-review superseded" : "rec-review current";
      div.dataset.version = r.version;
      const head = document.createElement("strong");
      head.textContent = T("质检分 ", "QA score ") + r.score + " (v" + r.version + ")";
      div.appendChild(head);
      const note = document.createElement("span");
      note.className = "rec-review-note";
      note.textContent = r.corrected_by
        ? T(" 已被 v" + versionOf.get(r.corrected_by) + " 更正", " corrected by v" + versionOf.get(r.corrected_by))
        : (r.amends_id ? T(" 当前（更正 v" + versionOf.get(r.amends_id) + "）", " current (corrects v" + versionOf.get(r.amends_id) + ")") : T(" 当前", " current"));
      div.appendChild(note);
      for (const c of r.comments) {
        const p = document.createElement("div");
        const at = document.createElement("span");
        at.className = "rec-comment-at";
        at.textContent = fmt(c.at);
        at.addEventListener("click", () => seekTo(c.at));
        p.appendChild(at);
        p.appendChild(document.createTextNode(" " + c.text));
        div.appendChild(p);
      }
      box.appendChild(div);
    }
  }

  function showCriteria(criteria) {
    const box = document.getElementById("qa-criteria");
    if (!box) return;
    box.textContent = "";
    for (const c of criteria) {
      const label = document.createElement("label");
      label.textContent = c.name + " (" + T("权重 ", "weight ") + c.weight + ") ";
      const input = document.createElement("input");
      Object.assign(input, { type: "number", min: 0, max: 100, required: true, name: "score-" + c.id });
      input.dataset.criterion = c.id;
      label.appendChild(input);
      box.appendChild(label);
    }
  }

  async function open(id) {
    current = await api("/api/recordings/" + id);
    document.querySelectorAll("#rec-list tbody tr").forEach((tr) =>
      tr.classList.toggle("selected", Number(tr.dataset.id) === id));
    document.getElementById("rec-player").hidden = false;
    document.getElementById("rec-title").textContent =
      (current.customer_name || T("未知来电", "Unknown caller")) + " · " + (current.agent_name || "") +
      " · " + fmt(current.duration_seconds);
    const sameRecording = audio.getAttribute("src") === current.audio_url;
    if (!sameRecording) audio.src = current.audio_url;  // a reload after a review keeps the position
    audio.playbackRate = Number(document.getElementById("rec-speed").value);
    document.getElementById("rec-download").href = current.audio_url + "?format=wav&download=1";
    document.getElementById("rec-pauses").textContent = current.pauses.length
      ? T("录音暂停: ", "Recording paused: ") + current.pauses.map((p) => fmt(p.from) + "–" + fmt(p.to)).join(", ")
      : "";
    comments = [];
    renderComments();
    showReviews(current.reviews);
    showCriteria(current.criteria);
    drawWave();
  }

  function renderComments() {
    const list = document.getElementById("qa-comments");
    if (!list) return;
    list.textContent = "";
    for (const c of comments) {
      const li = document.createElement("li");
      li.textContent = fmt(c.at) + " " + c.text;
      list.appendChild(li);
    }
  }

  const addComment = document.getElementById("qa-add-comment");
  if (addComment) addComment.addEventListener("click", () => {
    const input = document.getElementById("qa-comment-text");
    if (!input.value.trim()) return;
    comments.push({ at: Math.round(audio.currentTime * 100) / 100, text: input.value.trim() });
    input.value = "";
    renderComments();
  });

  const form = document.getElementById("qa-form");
  if (form) form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const scores = {};
    form.querySelectorAll("input[data-criterion]").forEach((i) => { scores[i.dataset.criterion] = Number(i.value); });
    const latest = current.reviews.length ? current.reviews[current.reviews.length - 1] : null;
    const result = document.getElementById("qa-result");
    try {
      const review = await api("/api/recordings/" + current.id + "/reviews", {
        method: "POST",
        body: JSON.stringify({
          scores, comments, summary: document.getElementById("qa-summary").value || null,
          amends_id: latest ? latest.id : null,
        }),
      });
      result.textContent = T("已提交，得分 ", "Submitted, score ") + review.score;
      await open(current.id);
      result.textContent = T("已提交，得分 ", "Submitted, score ") + review.score;
      search();
    } catch (error) {
      result.textContent = T("提交失败: ", "Not submitted: ") + error.message;
    }
  });

  async function loadCriteriaAdmin() {
    const list = document.getElementById("qa-criteria-list");
    if (!list) return;
    const body = await api("/api/qa/criteria?all=1");
    list.textContent = "";
    for (const c of body.criteria) {
      const li = document.createElement("li");
      li.textContent = c.name + " · " + c.weight + (c.active ? "" : T(" (停用)", " (retired)"));
      list.appendChild(li);
    }
  }
  const criterionForm = document.getElementById("qa-criterion-form");
  if (criterionForm) criterionForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(criterionForm);
    await api("/api/qa/criteria", {
      method: "POST",
      body: JSON.stringify({ name: data.get("name"), weight: Number(data.get("weight")) }),
    });
    criterionForm.reset();
    loadCriteriaAdmin();
  });

  document.getElementById("rec-filters").addEventListener("submit", search);
  search().then(() => { if (page.dataset.open) open(Number(page.dataset.open)); });
  loadCriteriaAdmin();
})();
