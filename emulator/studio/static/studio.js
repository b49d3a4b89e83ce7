/* amlemu studio: the little script the server-rendered pages need (tabs, live updates, charts, the few writes).
   Live updates poll one small JSON request a second per page, and only while the page is visible. */
"use strict";

const studio = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  async function post(url, payload) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(payload || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    return data;
  }

  function every(seconds, tick) {
    /* call tick() now and then every `seconds` while it returns true (stops when it returns false) */
    let timer = null;
    const run = async () => {
      let again = true;
      if (!document.hidden) {
        try { again = await tick(); } catch (e) { again = true; }
      }
      if (again !== false) timer = setTimeout(run, seconds * 1000);
    };
    run();
    return () => clearTimeout(timer);
  }

  function tabs(root) {
    const buttons = root.querySelectorAll(".tabs [data-tab]");
    const show = (name) => {
      buttons.forEach((b) => b.classList.toggle("current", b.dataset.tab === name));
      root.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== name; });
      root.dispatchEvent(new CustomEvent("tab", { detail: name }));
    };
    buttons.forEach((b) => b.addEventListener("click", () => { show(b.dataset.tab); history.replaceState(null, "", "#" + b.dataset.tab); }));
    const fromHash = () => {
      const wanted = location.hash.slice(1);
      show([...buttons].some((b) => b.dataset.tab === wanted) ? wanted : buttons[0] && buttons[0].dataset.tab);
    };
    window.addEventListener("hashchange", fromHash);
    fromHash();
  }

  function fmtSeconds(value) {
    if (value === null || value === undefined) return "";
    if (value < 1) return `${Math.round(value * 1000)} ms`;
    if (value < 60) return `${value.toFixed(1)} s`;
    const m = Math.floor(value / 60), s = Math.floor(value % 60);
    if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
  }

  function setStatus(el, status) {
    el.className = "status " + status;
    el.textContent = status;
  }

  /* -- the Jobs list ------------------------------------------------------------------------------------------- */
  function jobList(table) {
    const url = table.dataset.rowsUrl;
    const body = table.querySelector("tbody");
    const total = document.getElementById("job-total");
    let seen = "";
    every(1, async () => {
      const response = await fetch(`${url}&seen=${seen}`, { headers: { Accept: "application/json" } });
      if (!response.ok) return true;
      const data = await response.json();
      seen = data.seen;
      if (data.unchanged) return true;
      if (body.innerHTML !== data.html) body.innerHTML = data.html;
      if (total) total.textContent = data.total;
      return true;
    });
  }

  /* -- a job's page -------------------------------------------------------------------------------------------- */
  function jobPage(root) {
    const live = root.dataset.liveUrl;
    const log = document.getElementById("log");
    const status = document.getElementById("job-status");
    const duration = document.getElementById("job-duration");
    const children = document.getElementById("children");
    let offset = -1, lastStatus = status.textContent.trim(), ended = root.dataset.active !== "true";
    let stop = null;
    stop = every(1, async () => {
      const response = await fetch(`${live}?log=${offset}`);
      if (!response.ok) return true;
      const data = await response.json();
      if (offset < 0) log.textContent = "";
      if (data.log) {
        const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.textContent += data.log;
        if (atEnd) log.scrollTop = log.scrollHeight;
      }
      offset = data.log_offset;
      if (data.status !== lastStatus) {
        setStatus(status, data.status);
        lastStatus = data.status;
        root.dispatchEvent(new CustomEvent("statuschange", { detail: data.status }));
      }
      duration.textContent = fmtSeconds(data.duration);
      if (children && data.children_html !== null && children.innerHTML !== data.children_html) children.innerHTML = data.children_html;
      const cancel = document.getElementById("cancel-job");
      if (cancel) cancel.disabled = !data.active;
      if (ended && !data.active) return false; /* one read of an ended job: its whole log tail */
      ended = !data.active;
      return true;
    });
    const cancel = document.getElementById("cancel-job");
    if (cancel) cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try { const data = await post(cancel.dataset.url); setStatus(status, data.status); }
      catch (e) { showError(root, e.message); cancel.disabled = false; }
    });
    metrics(root);
  }

  /* -- metric charts (uPlot) ----------------------------------------------------------------------------------- */
  const PALETTE = ["#0078d4", "#8764b8", "#00b7c3", "#ca5010", "#498205", "#c239b3", "#e81123", "#605e5c"];

  function metrics(root) {
    const picker = document.getElementById("metric-picker");
    const area = document.getElementById("charts");
    if (!picker || !area) return;
    const job = root.dataset.job;
    const compare = () => [...document.querySelectorAll("#compare-runs input:checked")].map((i) => i.value);
    const draw = () => {
      area.innerHTML = "";
      picker.querySelectorAll("input:checked").forEach((input) => chart(area, input.value, [job, ...compare()]));
    };
    picker.addEventListener("change", draw);
    const runs = document.getElementById("compare-runs");
    if (runs) runs.addEventListener("change", draw);
    let drawn = false;
    const onTab = (name) => { if (name === "metrics" && !drawn) { drawn = true; draw(); } };
    root.addEventListener("tab", (e) => onTab(e.detail));
    root.addEventListener("statuschange", () => { if (drawn) draw(); });
    const current = root.querySelector(".tabs button.current");
    if (current) onTab(current.dataset.tab);
  }

  async function chart(area, key, jobs) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.metric = key;
    box.innerHTML = `<h3></h3><div class="plot"></div>`;
    box.querySelector("h3").textContent = key;
    area.appendChild(box);
    const query = new URLSearchParams([["key", key], ...jobs.map((j) => ["job", j])]);
    const response = await fetch(`${area.dataset.url}?${query}`);
    const data = await response.json();
    if (!response.ok) { box.querySelector(".plot").textContent = data.error ? data.error.message : "failed"; return; }
    const steps = [...new Set(data.series.flatMap((s) => s.steps))].sort((a, b) => a - b);
    const index = new Map(steps.map((s, i) => [s, i]));
    const columns = [steps];
    let points = 0;
    for (const s of data.series) {
      const values = new Array(steps.length).fill(null);
      s.steps.forEach((step, i) => { values[index.get(step)] = s.values[i]; });
      columns.push(values);
      points += s.values.length;
    }
    box.dataset.points = String(points);
    box.dataset.series = String(data.series.length);
    box.dataset.logged = String(data.series.reduce((n, s) => n + s.logged, 0));
    const plot = box.querySelector(".plot");
    const single = steps.length === 1;
    new uPlot({
      width: Math.max(320, plot.clientWidth || 460),
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, {}],
      series: [{ label: "step" }, ...data.series.map((s, i) => ({
        label: s.job, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
        points: { show: single || s.values.length <= 60 },
      }))],
    }, columns, plot);
    box.classList.add("drawn");
  }

  /* -- endpoints ----------------------------------------------------------------------------------------------- */
  function endpointPage(root) {
    const send = document.getElementById("test-send");
    if (send) send.addEventListener("click", async () => {
      const out = document.getElementById("test-result");
      send.disabled = true;
      out.hidden = true;
      try {
        const data = await post(send.dataset.url, {
          body: document.getElementById("test-body").value,
          deployment: document.getElementById("test-deployment").value,
        });
        document.getElementById("test-status").textContent = data.status;
        document.getElementById("test-latency").textContent = `${data.latency_ms} ms`;
        document.getElementById("test-served-by").textContent = data.deployment || "";
        document.getElementById("test-answer").textContent = data.body;
        out.hidden = false;
      } catch (e) { showError(root, e.message); }
      send.disabled = false;
    });
    const reveal = document.getElementById("reveal-keys");
    if (reveal) reveal.addEventListener("click", async () => {
      try {
        const keys = await post(reveal.dataset.url);
        document.getElementById("primary-key").textContent = keys.primary;
        document.getElementById("secondary-key").textContent = keys.secondary || "";
        reveal.hidden = true;
      } catch (e) { showError(root, e.message); }
    });
    root.querySelectorAll("[data-logs-url]").forEach((button) => button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.target);
      const response = await fetch(button.dataset.logsUrl);
      const data = await response.json();
      target.textContent = response.ok ? (data.log || "(empty)") : data.error.message;
      target.hidden = false;
    }));
  }

  /* -- compute ------------------------------------------------------------------------------------------------- */
  function computePage(root) {
    root.querySelectorAll("[data-verb]").forEach((button) => button.addEventListener("click", async () => {
      const row = button.closest("tr");
      row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      try {
        const data = await post(button.dataset.url);
        setStatus(row.querySelector(".status"), data.state);
        row.dataset.state = data.state;
      } catch (e) { showError(root, e.message); }
      row.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }));
  }

  function copyButtons() {
    document.querySelectorAll(".snippet").forEach((box) => {
      const button = box.querySelector("button");
      if (button) button.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(box.querySelector("pre").textContent));
    });
  }

  function showError(root, message) {
    let box = document.getElementById("page-error");
    if (!box) {
      box = document.createElement("div");
      box.id = "page-error";
      box.className = "error-box";
      root.prepend(box);
    }
    box.textContent = message;
  }

  function start() {
    document.querySelectorAll("[data-tabs]").forEach(tabs);
    const list = document.getElementById("job-list");
    if (list) jobList(list);
    const job = document.getElementById("job-page");
    if (job) jobPage(job);
    const endpoint = document.getElementById("endpoint-page");
    if (endpoint) endpointPage(endpoint);
    const compute = document.getElementById("compute-page");
    if (compute) computePage(compute);
    copyButtons();
  }

  return { start, post };
})();

document.addEventListener("DOMContentLoaded", studio.start);
