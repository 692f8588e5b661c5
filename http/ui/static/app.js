// Skyring dashboard: polls the node's own API once a second and renders it.
// No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
let token = sessionStorage.getItem("skyring-token") || "";
let prev = null; // {t, creates, deliveries} of the previous poll
let timer = null;

// api fetches a path of this node with the token, if any. A 401 shows the
// token form and stops polling until a token is given.
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
  if (r.status === 401) {
    showLogin(true);
    throw new Error("unauthorized");
  }
  return r;
}

function showLogin(on) {
  $("login").hidden = !on;
  $("main").hidden = on;
  if (on) {
    setStatus("token needed", "warn");
    $("token").focus();
  }
}

function setStatus(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + (cls || "");
}

// parseMetrics reads the Prometheus text exposition into samples
// {name, labels, value}. Enough of the format for what the node exposes.
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null) labels[l[1]] = l[2];
    }
    out.push({ name: m[1], labels, value: parseFloat(m[4]) });
  }
  return out;
}

function sum(samples, name, match) {
  let total = 0, found = false;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (match && !match(s.labels)) continue;
    total += s.value;
    found = true;
  }
  return found ? total : null;
}

const fmt = (v) => (v === null || v === undefined || isNaN(v)) ? "–" : (Math.round(v) === v ? String(v) : v.toFixed(1));

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function renderBars(el, rows) {
  el.textContent = "";
  const max = Math.max(1, ...rows.map((r) => r.value));
  for (const r of rows) {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.dataset.label = r.label;
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = r.label;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = (100 * r.value / max).toFixed(1) + "%";
    const val = document.createElement("span");
    val.className = "bar-value";
    val.textContent = fmt(r.value);
    row.append(label, bar, val);
    el.appendChild(row);
  }
}

function renderCluster(c) {
  $("node").textContent = c.node.id + " · " + c.node.http;
  $("pending-total").textContent = fmt(c.node.timers);
  $("ring-version").textContent = fmt(c.ring_version);
  const tbody = $("members").tBodies[0];
  tbody.textContent = "";
  for (const m of c.members || []) {
    const tr = document.createElement("tr");
    tr.dataset.id = m.id;
    cell(tr, m.id + (m.id === c.node.id ? " (this node)" : ""));
    cell(tr, m.http);
    cell(tr, fmt(m.timers), "num timers");
    cell(tr, m.started ? new Date(m.started).toLocaleString() : "–");
    tbody.appendChild(tr);
  }
}

function renderMetrics(samples, now) {
  const creates = sum(samples, "skyring_timer_commands_total", (l) => l.op === "create" && l.outcome === "ok" && l.interface !== "relay");
  const deliveries = sum(samples, "skyring_deliveries_total", (l) => l.outcome === "success");
  const failures = sum(samples, "skyring_deliveries_total", (l) => l.outcome === "failed" || l.outcome === "retry");
  $("creates-total").textContent = fmt(creates);
  $("deliveries-total").textContent = fmt(deliveries);
  $("failures-total").textContent = fmt(failures);
  $("failed-total").textContent = fmt(sum(samples, "skyring_timers_failed"));
  if (prev && now > prev.t) {
    const dt = (now - prev.t) / 1000;
    if (creates !== null && prev.creates !== null) $("creates-rate").textContent = fmt(Math.max(0, (creates - prev.creates) / dt));
    if (deliveries !== null && prev.deliveries !== null) $("deliveries-rate").textContent = fmt(Math.max(0, (deliveries - prev.deliveries) / dt));
  }
  prev = { t: now, creates, deliveries };

  // Lateness: cumulative buckets to counts per bucket.
  const buckets = samples
    .filter((s) => s.name === "skyring_fire_lateness_seconds_bucket")
    .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : parseFloat(s.labels.le), n: s.value }))
    .sort((a, b) => a.le - b.le);
  const rows = [];
  let below = 0, lo = 0;
  for (const b of buckets) {
    const label = b.le === Infinity ? "> " + seconds(lo) : "≤ " + seconds(b.le);
    rows.push({ label, value: b.n - below });
    below = b.n;
    if (b.le !== Infinity) lo = b.le;
  }
  renderBars($("lateness"), rows);

  const order = ["1m", "10m", "1h", "1d", "later"];
  const due = samples.filter((s) => s.name === "skyring_timers_pending_due")
    .sort((a, b) => order.indexOf(a.labels.within) - order.indexOf(b.labels.within))
    .map((s) => ({ label: s.labels.within === "later" ? "later" : "within " + s.labels.within, value: s.value }));
  renderBars($("pending-due"), due);
}

function seconds(s) {
  return s < 1 ? Math.round(s * 1000) + " ms" : s + " s";
}

function renderFailed(page) {
  const tbody = $("failed").tBodies[0];
  tbody.textContent = "";
  const timers = page.timers || [];
  $("failed-empty").hidden = timers.length > 0;
  for (const t of timers) {
    const tr = document.createElement("tr");
    tr.dataset.id = t.id;
    cell(tr, t.id, "id");
    cell(tr, t.callback ? t.callback.transport + " " + t.callback.uri : "");
    cell(tr, fmt(t.attempts), "num");
    cell(tr, t.last_error || "");
    cell(tr, t.finished_at ? new Date(t.finished_at).toLocaleString() : "");
    const td = cell(tr, "");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "retry";
    b.dataset.id = t.id;
    b.textContent = "Retry";
    b.addEventListener("click", () => retry(t.id, b));
    td.appendChild(b);
    tbody.appendChild(tr);
  }
}

async function retry(id, button) {
  button.disabled = true;
  button.textContent = "Retrying…";
  try {
    const r = await api("/timer/" + encodeURIComponent(id) + "/retry", { method: "POST" });
    button.textContent = r.status === 202 ? "Retried" : "Failed: " + (r.headers.get("x-skyring-reason") || r.status);
  } catch (e) {
    button.textContent = "Failed: " + e.message;
  }
  poll();
}

async function poll() {
  clearTimeout(timer);
  try {
    const now = Date.now();
    const [c, m, f] = await Promise.all([
      api("/cluster"),
      api("/metrics"),
      api("/timer?state=failed&limit=100"),
    ]);
    if (c.ok) renderCluster(await c.json());
    if (m.ok) renderMetrics(parseMetrics(await m.text()), now);
    if (f.ok) renderFailed(await f.json());
    setStatus(m.ok ? "live" : "live (metrics off)", "ok");
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    if (e.message === "unauthorized") return; // waits for a token
    setStatus("node unreachable: " + e.message, "warn");
  }
  timer = setTimeout(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-button").addEventListener("click", () => {
    token = $("token").value.trim();
    sessionStorage.setItem("skyring-token", token);
    showLogin(false);
    poll();
  });
  $("token").addEventListener("keydown", (e) => { if (e.key === "Enter") $("login-button").click(); });
  poll();
});
