// SPDX-License-Identifier: Apache-2.0
// anole console: the single page. It talks only to the JSON API
// (docs/anole-console.md), so whatever it shows another system can read.
// Every piece of data reaches the page through textContent or attributes set
// by el(); nothing is parsed as HTML.
"use strict";

const API = "api/v1";
const REFRESH_MS = 15000;          // the console's default scrape interval
const TOOLS = ["runqlat", "biolatency", "profile", "offcputime", "execsnoop", "opensnoop",
  "tcpretrans", "tcpstates", "runqslower", "loadtask", "iohang", "nosched", "oomkill"];
const HIST_TOOLS = new Set(["runqlat", "biolatency"]);
const FLAME_TOOLS = new Set(["profile", "offcputime"]);

const state = { user: null, role: null, timers: [], charts: [] };

// ------------------------------------------------------------------ DOM
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const $ = (sel) => document.querySelector(sel);
const main = () => $("#main");

function showMessage(text, ok) {
  const m = $("#msg");
  m.textContent = text;
  m.className = ok ? "ok" : "";
  m.hidden = !text;
}

// ------------------------------------------------------------------ API
function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Double-submit CSRF: every state-changing request carries the readable
// csrf_token cookie (set at login) in X-CSRF-Token.
async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = cookie("csrf_token");
  const res = await fetch(`${API}/${path}`, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text.slice(0, 200) }; }
  }
  if (!res.ok) {
    const msg = (data && data.error) || `${res.status} ${res.statusText}`;
    if (res.status === 401 && path !== "login") loginPage(path === "session" ? "" : msg);
    throw new ApiError(res.status, msg);
  }
  return data;
}

// Lists may come bare or wrapped ({"hosts": [...]}, {"items": [...]}).
function asList(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === "object") {
    for (const k of [...keys, "items", "data", "result"]) if (Array.isArray(data[k])) return data[k];
  }
  return [];
}

// ------------------------------------------------------------------ formatting
function fmtTime(t) {
  if (t === undefined || t === null || t === "") return "";
  let d;
  if (typeof t === "number") d = new Date(t > 1e12 ? t : t * 1000);
  else d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}
function fmtAgo(t) {
  if (t === undefined || t === null) return "never";
  const ms = typeof t === "number" ? (t > 1e12 ? t : t * 1000) : Date.parse(t);
  if (isNaN(ms)) return String(t);
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
function fmtNum(v, digits = 2) {
  if (v === undefined || v === null || v === "" || isNaN(Number(v))) return "—";
  const n = Number(v);
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits);
}
function fmtBytes(v) {
  if (v === undefined || v === null || isNaN(Number(v))) return "—";
  let n = Number(v), i = 0;
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n >= 100 ? 0 : 1)} ${u[i]}`;
}
function cellValue(v) {
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return v.map(x => typeof x === "object" ? JSON.stringify(x) : String(x)).join(" ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
function bar(pct) {
  if (pct === undefined || pct === null || isNaN(pct)) return el("span", { class: "muted", text: "—" });
  const p = Math.max(0, Math.min(100, Number(pct)));
  const cls = p >= 90 ? "bar crit" : p >= 70 ? "bar warn" : "bar";
  const fill = el("i");
  fill.style.width = `${p}%`;
  return el("span", {}, el("span", { class: cls }, fill), `${p.toFixed(0)}%`);
}

// A table of objects: the given columns, or every key seen, in order.
function objectTable(rows, columns) {
  if (!columns) {
    const seen = new Set();
    for (const r of rows) if (r && typeof r === "object") Object.keys(r).forEach(k => seen.add(k));
    columns = [...seen].map(k => ({ key: k, label: k }));
  }
  const thead = el("thead", {}, el("tr", {}, columns.map(c => el("th", { text: c.label }))));
  const tbody = el("tbody");
  const frag = document.createDocumentFragment();
  for (const r of rows) {
    frag.append(el("tr", {}, columns.map(c => {
      const v = c.render ? c.render(r) : cellValue(r[c.key]);
      return el("td", { class: c.num ? "num" : null }, v instanceof Node ? v : String(v));
    })));
  }
  tbody.append(frag);
  return el("table", {}, thead, tbody);
}

// ------------------------------------------------------------------ pages
// Performance marks for bench/console.sh (time to first render, charts).
function mark(name) {
  if (window.performance && performance.mark) performance.mark(name);
}

function clearPage() {
  state.timers.forEach(clearInterval);
  state.timers = [];
  state.charts.forEach(c => c.destroy());
  state.charts = [];
  showMessage("");
}

function setNav(page) {
  $("#nav").hidden = !state.user;
  $("#logout").hidden = !state.user;
  $("#who").textContent = state.user ? `${state.user}${state.role ? " (" + state.role + ")" : ""}` : "";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
}

function loginPage(why) {
  clearPage();
  state.user = null;
  setNav("");
  const user = el("input", { name: "user", id: "login-user", autocomplete: "username", required: true });
  const pass = el("input", { name: "password", id: "login-password", type: "password", autocomplete: "current-password", required: true });
  const err = el("p", { class: "muted", id: "login-error", text: why && why !== "login" ? why : "" });
  const form = el("form", { class: "login", id: "login-form", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "login", { user: user.value, password: pass.value });
      state.user = (r && (r.user || r.name)) || user.value;
      state.role = r && r.role || null;
      if (!location.hash || location.hash === "#/login") location.hash = "#/hosts";
      route();
    } catch (e) {
      err.textContent = e.message;
    }
  } },
  el("h1", { text: "Log in" }),
  el("label", {}, "User", user),
  el("label", {}, "Password", pass),
  el("button", { type: "submit", id: "login-submit", text: "Log in" }),
  err);
  main().replaceChildren(form);
  user.focus();
}

// Health at a glance. The host list may carry the latest figures itself
// (cpu, memory, load1, psi_cpu ...), under a few spellings; absent ones show —.
function pick(h, ...keys) {
  for (const k of keys) {
    let v = h;
    for (const part of k.split(".")) v = v && typeof v === "object" ? v[part] : undefined;
    if (v !== undefined && v !== null && v !== "") return Number(v);
  }
  return undefined;
}
// Percent fields are shown as they are; ratio fields (0..1) are scaled.
function hostHealth(h) {
  const pct = (pctKeys, ratioKeys) => {
    const p = pick(h, ...pctKeys);
    if (p !== undefined) return p;
    const r = pick(h, ...ratioKeys);
    return r === undefined ? undefined : 100 * r;
  };
  let mem = pct(["memory_percent", "mem_percent", "health.memory_percent"], ["health.memory_used_ratio", "memory_used_ratio", "memory_ratio"]);
  if (mem === undefined) {
    const total = pick(h, "health.memory_total_bytes", "mem_total", "memory_total"), avail = pick(h, "mem_available", "memory_available");
    if (total > 0 && avail !== undefined) mem = 100 * (1 - avail / total);
  }
  return {
    cpu: pct(["cpu_percent", "health.cpu_percent"], ["health.cpu_busy_ratio", "cpu_busy_ratio", "cpu_ratio"]),
    mem,
    load: pick(h, "load1", "load", "health.load1"),
    psi: pct(["psi_cpu_percent", "health.psi_cpu_percent"], ["health.psi_cpu_some_avg10", "psi_cpu_some_avg10", "psi_cpu"]),
  };
}

async function hostsPage() {
  clearPage();
  setNav("hosts");
  const search = el("input", { type: "search", id: "host-search", placeholder: "search name, address, status" });
  const count = el("span", { class: "muted", id: "host-count" });
  const holder = el("div", { id: "host-table" });
  main().replaceChildren(el("h1", { text: "Hosts" }),
    el("form", { class: "inline", onsubmit: e => e.preventDefault() }, el("label", {}, "Search", search), count),
    holder);
  let hosts = [];
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = q ? hosts.filter(h => [h.name, h.address, h.status].some(v => String(v ?? "").toLowerCase().includes(q))) : hosts;
    count.textContent = `${shown.length} of ${hosts.length} hosts`;
    const table = objectTable(shown, [
      { label: "Host", render: h => el("a", { href: `#/host/${encodeURIComponent(h.name)}`, class: "hostlink", text: h.name }) },
      { label: "Address", key: "address" },
      { label: "Status", render: h => el("span", { class: `status ${h.status === "up" ? "up" : "down"}`, text: h.status || "unknown" }) },
      { label: "CPU", render: h => bar(hostHealth(h).cpu) },
      { label: "Memory", render: h => bar(hostHealth(h).mem) },
      { label: "Load (1 min)", num: true, render: h => fmtNum(hostHealth(h).load) },
      { label: "CPU pressure", render: h => bar(hostHealth(h).psi) },
      { label: "Last seen", render: h => el("span", { title: fmtTime(h.last_seen), text: fmtAgo(h.last_seen) }) },
    ]);
    table.id = "hosts";
    const rows = table.tBodies[0].rows;
    shown.forEach((h, i) => {
      rows[i].className = "host";
      rows[i].dataset.host = h.name;
      rows[i].addEventListener("click", (ev) => { if (ev.target.tagName !== "A") location.hash = `#/host/${encodeURIComponent(h.name)}`; });
    });
    holder.replaceChildren(table);
    mark("anole:hosts-rendered");
    // fetch Chart.js while the operator reads the list
    setTimeout(() => loadChart().catch(() => {}), 0);
  };
  search.addEventListener("input", draw);
  const load = async () => {
    try {
      hosts = asList(await api("GET", "hosts"), "hosts");
      hosts.sort((a, b) => String(a.name).localeCompare(String(b.name)));
      draw();
    } catch (e) { if (e.status !== 401) showMessage(`hosts: ${e.message}`); }
  };
  await load();
  state.timers.push(setInterval(load, REFRESH_MS));
}

// ---- metric series
// The metrics endpoint's series: [{labels, points:[[t,v]...]}] or
// Prometheus's shape ({data:{result:[{metric, values}]}}).
function normalizeSeries(data) {
  let list = data;
  if (data && !Array.isArray(data)) {
    list = data.series ?? data.result ?? data.data?.result ?? (data.points || data.values ? [data] : []);
  }
  if (!Array.isArray(list)) return [];
  return list.map(s => {
    const labels = s.labels ?? s.metric ?? {};
    const pts = (s.points ?? s.values ?? s.samples ?? []).map(p => Array.isArray(p) ? [Number(p[0]), Number(p[1])]
      : [Number(p.t ?? p.time ?? p.ts), Number(p.v ?? p.value)]);
    return { labels, points: pts.filter(p => isFinite(p[0]) && isFinite(p[1])).sort((a, b) => a[0] - b[0]) };
  });
}
// label ("KEY=VALUE") asks only for the series with that label: a 24 h
// chart of two meminfo fields need not fetch all forty.
async function series(host, name, range, label) {
  const q = new URLSearchParams({ name, range: String(range) });
  if (label) q.set("label", label);
  return normalizeSeries(await api("GET", `hosts/${encodeURIComponent(host)}/metrics?${q}`));
}
function matches(labels, want) {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}
// Per-second rate of a counter; a drop is a reset (the agent restarted).
function rate(points) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const dt = points[i][0] - points[i - 1][0];
    const dv = points[i][1] - points[i - 1][1];
    if (dt > 0 && dv >= 0) out.push([points[i][0], dv / dt]);
  }
  return out;
}
// Sum several series on their common timestamps. Series of one metric
// come from the same scrapes, so their timestamps are usually identical:
// then the sum is by index (a 24 h CPU chart sums 8 x 5760 points).
function sumSeries(list) {
  if (!list.length) return [];
  const first = list[0].points;
  if (list.every(s => s.points.length === first.length &&
                      s.points.every((p, i) => p[0] === first[i][0]))) {
    return first.map((p, i) => [p[0], list.reduce((a, s) => a + s.points[i][1], 0)]);
  }
  const acc = new Map();
  for (const s of list) for (const [t, v] of s.points) acc.set(t, (acc.get(t) || 0) + v);
  const n = new Map();
  for (const s of list) for (const [t] of s.points) n.set(t, (n.get(t) || 0) + 1);
  return [...acc].filter(([t]) => n.get(t) === list.length).sort((a, b) => a[0] - b[0]);
}

// The charts of the host page: each fetches its metric and derives the
// plotted lines from it.
const CHARTS = [
  { id: "cpu", title: "CPU busy (%)", metric: "anole_system_cpu_seconds_total", derive: (ss) => {
    const busy = ss.filter(s => !["idle", "iowait"].includes(s.labels.mode));
    const all = rate(sumSeries(ss)), b = new Map(rate(sumSeries(busy)));
    return [{ label: "busy", points: all.filter(([t, v]) => v > 0 && b.has(t)).map(([t, v]) => [t, 100 * b.get(t) / v]) }];
  } },
  { id: "memory", title: "Memory", unit: "bytes", metric: "anole_memory_bytes",
    labels: ["field=MemTotal", "field=MemAvailable"], derive: (ss) => {
    const f = (n) => ss.find(s => s.labels.field === n);
    const total = f("MemTotal"), avail = f("MemAvailable");
    if (!total || !avail) return ss.slice(0, 3).map(s => ({ label: s.labels.field || "memory", points: s.points }));
    const tm = new Map(total.points);
    return [{ label: "used", points: avail.points.filter(([t]) => tm.has(t)).map(([t, v]) => [t, tm.get(t) - v]) },
            { label: "total", points: total.points }];
  } },
  { id: "load", title: "Load average", metric: "anole_load1", derive: (ss) => ss.map(s => ({ label: "load1", points: s.points })) },
  { id: "psi", title: "Pressure, some, avg10 (%)", metric: "anole_pressure_ratio", labels: ["window=10s"], derive: (ss) =>
    ss.filter(s => (s.labels.kind ?? "some") === "some" && ["10s", "avg10", undefined].includes(s.labels.window))
      .map(s => ({ label: s.labels.resource || "pressure", points: s.points.map(([t, v]) => [t, v <= 1 ? v * 100 : v]) })) },
];
const COLOURS = ["#2f7ed8", "#e8a33a", "#1aadce", "#8bbc21", "#910000", "#492970"];

// Chart.js (200 KB) is loaded when a chart is first drawn, not before the
// host list.
let chartLoading = null;
function loadChart() {
  if (window.Chart) return Promise.resolve();
  if (!chartLoading) {
    chartLoading = new Promise((resolve, reject) => {
      const s = el("script", { src: "chart.min.js" });
      s.addEventListener("load", resolve);
      s.addEventListener("error", () => { chartLoading = null; reject(new Error("cannot load chart.min.js")); });
      document.head.append(s);
    });
  }
  return chartLoading;
}

function timeTick(v) {
  const d = new Date(v * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// The x axis spans the range asked for, not only the samples there are.
function drawLineChart(canvas, lines, unit, range) {
  const now = Date.now() / 1000;
  const chart = new Chart(canvas, {
    type: "line",
    data: { datasets: lines.map((l, i) => ({
      label: l.label, data: l.points.map(([x, y]) => ({ x, y })),
      borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length],
      borderWidth: 1.5, pointRadius: l.points.length > 60 ? 0 : 2, tension: 0, spanGaps: false,
    })) },
    options: {
      animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: false, axis: "x" },
      plugins: {
        decimation: { enabled: true, algorithm: "lttb", samples: 500 },
        tooltip: { callbacks: { title: (items) => items.length ? fmtTime(items[0].parsed.x) : "",
          label: (it) => `${it.dataset.label}: ${unit === "bytes" ? fmtBytes(it.parsed.y) : fmtNum(it.parsed.y)}` } },
      },
      scales: {
        x: { type: "linear", min: range ? now - range : undefined, max: range ? now : undefined,
             ticks: { callback: timeTick, maxTicksLimit: 8 } },
        y: { beginAtZero: true, ticks: { callback: (v) => unit === "bytes" ? fmtBytes(v) : v } },
      },
    },
  });
  state.charts.push(chart);
  return chart;
}

const RANGES = [[900, "15 min"], [3600, "1 h"], [6 * 3600, "6 h"], [86400, "24 h"]];

async function hostPage(name) {
  clearPage();
  mark("anole:host-page-start");
  setNav("hosts");
  let host = null;
  try {
    const hosts = asList(await api("GET", "hosts"), "hosts");
    host = hosts.find(h => h.name === name);
  } catch (e) { if (e.status === 401) return; showMessage(e.message); }
  if (!host) {
    main().replaceChildren(el("h1", { text: `Host ${name}` }), el("p", { text: "No such host." }));
    return;
  }
  const rangeSel = el("select", { id: "range" }, RANGES.map(([s, l]) => el("option", { value: s, text: l, selected: s === 3600 })));
  const charts = el("div", { class: "charts", id: "charts" });
  const head = el("div", {},
    el("h1", {}, `Host ${host.name} `, el("span", { class: `status ${host.status === "up" ? "up" : "down"}`, text: host.status || "unknown" })),
    el("p", { class: "muted" }, `address ${host.address ?? "?"} · last seen ${fmtAgo(host.last_seen)}`),
    el("form", { class: "inline", onsubmit: e => e.preventDefault() }, el("label", {}, "Range", rangeSel)));
  const diag = diagnosePanel(host.name);
  main().replaceChildren(head, charts, diag);
  const drawAll = async () => {
    charts.dataset.ready = "0";
    mark("anole:charts-start");
    try { await loadChart(); } catch (e) { showMessage(e.message); return; }
    state.charts.forEach(c => c.destroy());
    state.charts = [];
    const range = Number(rangeSel.value);
    await Promise.all(CHARTS.map(async (c) => {
      const canvas = el("canvas", { id: `chart-${c.id}` });
      const info = el("span", { class: "muted" });
      const box = el("div", { class: "chart", dataset: { chart: c.id } }, el("h3", {}, c.title, " ", info), el("div", { class: "canvas" }, canvas));
      charts.append(box);
      try {
        // the filtered queries, and the derivation checks the labels again
        // (a store that ignored the filter gives the same chart, slower)
        const t0 = performance.now();
        const parts = await Promise.all((c.labels || [null]).map(l => series(host.name, c.metric, range, l)));
        const t1 = performance.now();
        const lines = c.derive(parts.flat()).filter(l => l.points.length);
        const n = lines.reduce((a, l) => a + l.points.length, 0);
        box.dataset.points = String(n);
        if (!n) { info.textContent = "(no samples yet)"; return; }
        drawLineChart(canvas, lines, c.unit, range);
        // for bench/console.sh: waiting for the API, and deriving + drawing
        box.dataset.fetchMs = (t1 - t0).toFixed(0);
        box.dataset.drawMs = (performance.now() - t1).toFixed(0);
      } catch (e) {
        if (e.status !== 401) info.textContent = `(${e.message})`;
      }
    }));
    charts.dataset.ready = "1";
    mark("anole:charts-rendered");
  };
  rangeSel.addEventListener("change", () => { charts.replaceChildren(); drawAll(); });
  await drawAll();
  state.timers.push(setInterval(() => { charts.replaceChildren(); drawAll(); }, REFRESH_MS * 4));
}

// ---- diagnose panel
function diagnosePanel(hostName) {
  const tool = el("select", { id: "diag-tool" }, TOOLS.map(t => el("option", { value: t, text: t })));
  const duration = el("input", { id: "diag-duration", type: "number", min: 1, max: 600, value: 5, size: 4 });
  const status = el("span", { id: "diag-status", class: "muted" });
  const out = el("div", { id: "diag-result" });
  const run = el("button", { type: "submit", id: "diag-run", text: "Run" });
  const form = el("form", { class: "inline", id: "diag-form", onsubmit: async (ev) => {
    ev.preventDefault();
    run.disabled = true;
    out.replaceChildren();
    const t0 = performance.now();
    try {
      status.textContent = "starting…";
      const r = await api("POST", `hosts/${encodeURIComponent(hostName)}/diagnoses`,
        { tool: tool.value, duration: Number(duration.value), options: {} });
      const id = r && r.id;
      if (id === undefined) throw new Error("the console gave no diagnosis id");
      status.textContent = `running (${id})…`;
      const d = await pollDiagnosis(id, Number(duration.value));
      const secs = ((performance.now() - t0) / 1000).toFixed(2);
      if (d.status === "done") {
        status.textContent = `done in ${secs} s`;
        await renderResult(out, tool.value, d.result);
      } else {
        status.textContent = `failed: ${d.error || "no reason given"}`;
      }
      form.dataset.roundTrip = secs;
      form.dataset.status = d.status;
    } catch (e) {
      status.textContent = `error: ${e.message}`;
      form.dataset.status = "error";
    } finally {
      run.disabled = false;
    }
  } },
  el("label", {}, "Tool", tool), el("label", {}, "Duration (s)", duration), run, status);
  return el("section", { class: "panel" }, el("h2", { text: "Diagnose" }), form, out);
}

async function pollDiagnosis(id, duration) {
  // A long poll: the console answers ?wait= the moment the result is in
  // (or after the wait), so the result shows without a polling delay. The
  // deadline is generous (the agent bounds the run itself) but not infinite.
  const deadline = Date.now() + (duration + 60) * 1000;
  while (Date.now() < deadline) {
    const t0 = Date.now();
    const d = await api("GET", `diagnoses/${encodeURIComponent(id)}?wait=20`);
    if (d && d.status && d.status !== "running" && d.status !== "queued") return d;
    // answered early without a result (a console of before ?wait=, or a
    // failed request): do not spin
    if (Date.now() - t0 < 500) await new Promise(r => setTimeout(r, 500));
  }
  return { status: "failed", error: "no result within the duration plus 60 s" };
}

// The result is the tool's JSON: one object, or a list of the objects it
// printed (one per line).
function resultRecords(result) {
  if (Array.isArray(result)) return result;
  if (typeof result === "string") {
    return result.split("\n").filter(Boolean).map(l => { try { return JSON.parse(l); } catch { return l; } });
  }
  if (result && typeof result === "object") {
    for (const k of ["records", "events", "reports", "lines"]) if (Array.isArray(result[k])) return result[k];
    return [result];
  }
  return [];
}

async function renderResult(out, tool, result) {
  const records = resultRecords(result);
  if (HIST_TOOLS.has(tool)) {
    const hists = [];
    for (const r of records) {
      if (!r || typeof r !== "object") continue;
      const unit = r.unit || "usecs";
      if (Array.isArray(r.hist)) hists.push({ title: histTitle(r), unit, hist: r.hist, total: r.total });
      if (Array.isArray(r.hists)) for (const h of r.hists) hists.push({ title: histTitle(h), unit, hist: h.hist || [], total: h.total });
    }
    if (hists.length) {
      await loadChart();
      hists.forEach(h => out.append(histogram(h)));
      return;
    }
  }
  if (FLAME_TOOLS.has(tool)) {
    const box = el("div", { id: "flamegraph" });
    out.append(el("h2", { text: `Flame graph (${tool === "offcputime" ? "off-CPU µs" : "samples"})` }), box);
    const n = AnoleFlame.render(box, records, { unit: tool === "offcputime" ? "µs" : "samples" });
    box.dataset.stacks = String(n);
    return;
  }
  const objs = records.filter(r => r && typeof r === "object");
  if (objs.length) out.append(el("div", { id: "diag-table" }, objectTable(objs)));
  else out.append(el("pre", { class: "raw", text: JSON.stringify(result, null, 2) }));
}

function histTitle(r) {
  const who = r.disk ?? r.comm ?? r.pid ?? r.tid ?? r.label ?? r.key;
  return who !== undefined ? String(who) : "";
}

function histogram(h) {
  const rows = h.hist.filter(b => b && b.count !== undefined);
  // Trim empty buckets at both ends as the terminal tools do.
  let lo = 0, hi = rows.length - 1;
  while (lo < hi && !rows[lo].count) lo++;
  while (hi > lo && !rows[hi].count) hi--;
  const shown = rows.slice(lo, hi + 1);
  const canvas = el("canvas", { class: "hist" });
  const box = el("div", { class: "histchart", dataset: { buckets: shown.length, total: h.total ?? "" } }, canvas);
  const table = objectTable(shown, [
    { label: `${h.unit}`, render: b => `${b.low} – ${b.high}` },
    { label: "count", key: "count", num: true },
  ]);
  const section = el("div", { class: "histogram" },
    el("h2", { text: `Histogram${h.title ? " " + h.title : ""} (${h.unit}, total ${h.total ?? shown.reduce((a, b) => a + b.count, 0)})` }),
    box, table);
  queueMicrotask(() => {
    state.charts.push(new Chart(canvas, {
      type: "bar",
      data: { labels: shown.map(b => `${b.low}-${b.high}`), datasets: [{ label: "count", data: shown.map(b => b.count), backgroundColor: "#2f7ed8" }] },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } },
        scales: { x: { title: { display: true, text: h.unit } }, y: { beginAtZero: true } } },
    }));
  });
  return section;
}

// ---- alerts
async function alertsPage() {
  clearPage();
  setNav("alerts");
  const rulesBox = el("div", { id: "alert-rules" }), eventsBox = el("div", { id: "alert-events" });
  const f = {
    name: el("input", { name: "name", required: true, placeholder: "cpu-pressure" }),
    metric: el("input", { name: "metric", required: true, value: "anole_pressure_ratio", size: 24 }),
    labels: el("input", { name: "labels", placeholder: "resource=cpu,kind=some,window=10s", size: 30 }),
    comparison: el("select", { name: "comparison" }, [">", ">=", "<", "<="].map(o => el("option", { value: o, text: o }))),
    threshold: el("input", { name: "threshold", type: "number", step: "any", required: true, value: 0.5, size: 6 }),
    for: el("input", { name: "for", type: "number", min: 0, required: true, value: 60, size: 5 }),
    severity: el("select", { name: "severity" }, ["info", "warning", "critical"].map(s => el("option", { value: s, text: s, selected: s === "warning" }))),
    webhook: el("input", { name: "webhook", type: "url", placeholder: "http://hooks.example/alert", size: 28 }),
  };
  const form = el("form", { class: "inline", id: "rule-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const labels = {};
    for (const kv of f.labels.value.split(",").map(s => s.trim()).filter(Boolean)) {
      const i = kv.indexOf("=");
      if (i <= 0) { showMessage(`labels: '${kv}' is not NAME=VALUE`); return; }
      labels[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    }
    const rule = { name: f.name.value, metric: f.metric.value, labels, comparison: f.comparison.value,
      threshold: Number(f.threshold.value), for: Number(f.for.value), severity: f.severity.value };
    if (f.webhook.value) rule.webhook = f.webhook.value;
    try {
      await api("POST", "alerts/rules", rule);
      showMessage(`rule ${rule.name} saved`, true);
      load();
    } catch (e) { showMessage(`rule: ${e.message}`); }
  } },
  Object.entries(f).map(([k, input]) => el("label", {}, k, input)),
  el("button", { type: "submit", text: "Add rule" }));
  main().replaceChildren(el("h1", { text: "Alerts" }), el("h2", { text: "Rules" }), form, rulesBox,
    el("h2", { text: "Events (firing and resolved)" }), eventsBox);
  const load = async () => {
    try {
      const rules = asList(await api("GET", "alerts/rules"), "rules");
      rulesBox.replaceChildren(objectTable(rules, [
        { label: "name", key: "name" },
        { label: "condition", render: r => `${r.metric ?? r.expr ?? ""}${labelText(r.labels)} ${r.comparison ?? r.op ?? ">"} ${r.threshold ?? ""}` },
        { label: "for (s)", num: true, render: r => cellValue(r.for ?? r.duration) },
        { label: "severity", key: "severity" },
        { label: "webhook", key: "webhook" },
        { label: "", render: r => r.id === undefined && r.name === undefined ? "" : el("button", { type: "button", text: "Delete", onclick: async () => {
          try { await api("DELETE", `alerts/rules/${encodeURIComponent(r.id ?? r.name)}`); load(); }
          catch (e) { showMessage(`delete: ${e.message}`); }
        } }) },
      ]));
      const events = asList(await api("GET", "alerts/events"), "events");
      eventsBox.replaceChildren(events.length ? objectTable(events, eventColumns(events)) : el("p", { class: "muted", text: "No events." }));
    } catch (e) { if (e.status !== 401) showMessage(`alerts: ${e.message}`); }
  };
  await load();
  state.timers.push(setInterval(load, REFRESH_MS));
}
function labelText(labels) {
  if (!labels || typeof labels !== "object" || !Object.keys(labels).length) return "";
  return `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",")}}`;
}
function eventColumns(rows) {
  const keys = new Set();
  rows.forEach(r => Object.keys(r).forEach(k => keys.add(k)));
  return [...keys].map(k => ({ label: k, render: r => {
    const v = r[k];
    if (k === "state" || k === "status") return el("span", { class: `status ${v}`, text: cellValue(v) });
    if (/^ts$|time|_at$|since|when|^(created|started|finished|last_seen)$/.test(k) && typeof v === "number") return fmtTime(v);
    return cellValue(v);
  } }));
}

// ---- audit
async function auditPage() {
  clearPage();
  setNav("audit");
  const search = el("input", { type: "search", id: "audit-search", placeholder: "filter" });
  const box = el("div", { id: "audit" });
  main().replaceChildren(el("h1", { text: "Audit log" }),
    el("form", { class: "inline", onsubmit: e => e.preventDefault() }, el("label", {}, "Filter", search)), box);
  let entries = [];
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = q ? entries.filter(e => JSON.stringify(e).toLowerCase().includes(q)) : entries;
    const t = objectTable(shown, eventColumns(shown.length ? shown : [{ time: "", user: "", action: "", result: "" }]));
    t.id = "audit-table";
    box.replaceChildren(t);
  };
  search.addEventListener("input", draw);
  const load = async () => {
    try { entries = asList(await api("GET", "audit"), "audit", "entries"); draw(); }
    catch (e) { if (e.status !== 401) showMessage(`audit: ${e.message}`); }
  };
  await load();
  state.timers.push(setInterval(load, REFRESH_MS));
}

// ---- users and agent tokens (admins)
async function usersPage() {
  clearPage();
  setNav("users");
  const box = el("div", { id: "users" });
  const tokenOut = el("p", { id: "token-out" });
  const f = {
    name: el("input", { name: "name", required: true, autocomplete: "off" }),
    role: el("select", { name: "role" }, ["viewer", "operator", "admin"].map(r => el("option", { value: r, text: r }))),
    password: el("input", { name: "password", type: "password", required: true, autocomplete: "new-password", minlength: 8 }),
  };
  const form = el("form", { class: "inline", id: "user-form", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "users", { name: f.name.value, role: f.role.value, password: f.password.value });
      showMessage(`user ${f.name.value} added`, true);
      f.password.value = "";
      load();
    } catch (e) { showMessage(`user: ${e.message}`); }
  } }, Object.entries(f).map(([k, input]) => el("label", {}, k, input)), el("button", { type: "submit", text: "Add user" }));
  const tokenButton = el("button", { type: "button", id: "token-create", text: "Create agent token", onclick: async () => {
    try {
      const r = await api("POST", "tokens", {});
      tokenOut.replaceChildren("New agent token (shown once): ", el("code", { text: r && r.token }));
    } catch (e) { showMessage(`token: ${e.message}`); }
  } });
  main().replaceChildren(el("h1", { text: "Users" }), form, box,
    el("h2", { text: "Agent tokens" }), tokenButton, tokenOut);
  const load = async () => {
    try {
      const users = asList(await api("GET", "users"), "users");
      box.replaceChildren(objectTable(users, [
        { label: "name", render: u => cellValue(u.name ?? u.user) },
        { label: "role", key: "role" },
        { label: "created", render: u => fmtTime(u.created ?? u.created_at) },
        { label: "", render: u => el("button", { type: "button", text: "Delete", onclick: async () => {
          if (!confirm(`Delete user ${u.name ?? u.user}?`)) return;
          try { await api("DELETE", `users/${encodeURIComponent(u.name ?? u.user)}`); load(); }
          catch (e) { showMessage(`delete: ${e.message}`); }
        } }) },
      ]));
    } catch (e) {
      if (e.status === 403) box.replaceChildren(el("p", { class: "muted", text: "Only admins manage users." }));
      else if (e.status !== 401) showMessage(`users: ${e.message}`);
    }
  };
  await load();
}

// ------------------------------------------------------------------ routing
async function route() {
  if (!state.user) {
    // A session cookie may still be valid (a reload, a new tab): ask.
    try {
      const s = await api("GET", "session");
      if (s && s.user) { state.user = s.user; state.role = s.role || null; }
    } catch { /* 401: the login form is shown */ }
  }
  const hash = location.hash || "#/hosts";
  const [, page, arg] = /^#\/([a-z]+)(?:\/(.*))?$/.exec(hash) || [];
  if (!state.user || page === "login") { if (!$("#login-form")) loginPage(); return; }
  switch (page) {
    case "host": hostPage(decodeURIComponent(arg || "")); break;
    case "alerts": alertsPage(); break;
    case "audit": auditPage(); break;
    case "users": usersPage(); break;
    default: hostsPage();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#logout").addEventListener("click", async () => {
    try { await api("POST", "logout", {}); } catch { /* the session may be gone already */ }
    state.user = null;
    location.hash = "#/login";
    loginPage();
  });
  window.addEventListener("hashchange", route);
  route();
});
