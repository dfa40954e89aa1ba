// oexec live dashboard: renders the snapshot pushed on /dashboard/stream (SSE).
// No framework, no CDN: plain DOM and a tiny canvas line chart.
"use strict";

const HISTORY = 300; // points kept per chart (5 min at 1 s)
const MIN_POINTS = 60; // charts span at least this many points, newest at the right
const RATE_WINDOW_S = 5; // rates are averaged over this many seconds
const OPEN_ROWS = 15; // open orders listed (the most recently changed)
const ACTIVITY_ROWS = 10; // final orders listed in the recent activity
const COLORS = ["#58a6ff", "#d29922", "#f85149"];
const series = { latency: [[], [], []], fills: [[], []], rejects: [[]] };
const totals = {}; // key -> [[time, value], ...] for rates

const $ = (id) => document.getElementById(id);
const num = (v, digits = 0) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const sum = (obj) => Object.values(obj || {}).reduce((a, b) => a + b, 0);

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

function rows(tbody, items) {
  tbody.replaceChildren(...items.map((cells) => {
    const tr = document.createElement("tr");
    cells.forEach((c) => tr.appendChild(c instanceof Node ? wrapCell(c) : text("td", c)));
    return tr;
  }));
}

function wrapCell(node) {
  const td = document.createElement("td");
  td.appendChild(node);
  return td;
}

function push(list, value) {
  list.push(value);
  if (list.length > HISTORY) list.shift();
}

function chart(canvas, lines) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const values = lines.flat().filter((v) => v !== null && Number.isFinite(v));
  if (!values.length) return;
  const max = Math.max(1e-9, ...values) * 1.1;
  ctx.fillStyle = "#7d8a99";
  ctx.font = "10px sans-serif";
  ctx.fillText(max.toPrecision(3), 4, 10);
  const span = Math.max(MIN_POINTS, ...lines.map((l) => l.length)) - 1;
  lines.forEach((line, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    line.forEach((v, x) => {
      if (v === null || !Number.isFinite(v)) { started = false; return; }
      const px = w - ((line.length - 1 - x) / span) * w, py = h - (v / max) * (h - 4);
      if (started) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      started = true;
    });
    ctx.stroke();
  });
}

function duration(seconds) {
  const s = Math.floor(seconds), d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return (d ? d + "d " : "") + (d || hh ? hh + "h " : "") + (d || hh || mm ? mm + "m " : "") + ss + "s";
}

// Average increase per second of a cumulative total over the last RATE_WINDOW_S.
function rate(key, time, value) {
  const points = (totals[key] = totals[key] || []);
  points.push([time, value]);
  while (points.length > 2 && time - points[1][0] >= RATE_WINDOW_S) points.shift();
  const [t0, v0] = points[0];
  return time > t0 ? Math.max(0, value - v0) / (time - t0) : null;
}

// One <tr> per key, updated in place: rows whose key left the list are removed, new
// ones created, and the rest keep their element (and so their place in the DOM).
function keyedRows(tbody, items, key, cells) {
  const keep = new Set(items.map(key));
  for (const tr of [...tbody.children]) if (!keep.has(tr.dataset.key)) tr.remove();
  const existing = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  items.forEach((item, i) => {
    let tr = existing.get(key(item));
    if (!tr) { tr = document.createElement("tr"); tr.dataset.key = key(item); }
    const values = cells(item);
    while (tr.children.length > values.length) tr.lastChild.remove();
    values.forEach((v, c) => {
      let td = tr.children[c];
      if (!td) { td = document.createElement("td"); tr.appendChild(td); }
      if (v instanceof Node) { if (td.firstChild?.textContent !== v.textContent || td.firstChild?.className !== v.className) td.replaceChildren(v); }
      else if (td.textContent !== String(v)) td.textContent = v;
    });
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
}

const stateChip = (o) => text("span", o.state + (o.error_code ? ` (${o.error_code})` : ""), "chip");
const signed = (v) => text("span", v, Number(v) < 0 ? "neg" : Number(v) > 0 ? "pos" : "");

const BREAKER = { 0: ["closed", "ok"], 1: ["half-open", "warn"], 2: ["open", "bad"] };

function render(s) {

  // 1. active orders
  const a = s.active_orders;
  $("open-count").textContent = a.open;
  $("placed-count").textContent = num(a.placed_total);
  $("filled-count").textContent = num(a.filled_total);
  $("states").replaceChildren(...Object.entries(a.by_state).map(
    ([state, n]) => text("span", `${state} ${n}`, "chip" + (state === "UNKNOWN" ? " bad" : ""))));
  const open = a.orders.slice(0, OPEN_ROWS);
  keyedRows($("open-orders"), open, (o) => o.id,
    (o) => [o.id, o.symbol, o.side, o.type, stateChip(o), o.quantity, o.filled, o.price ?? "–"]);
  $("open-shown").textContent = a.open > open.length ? `showing the ${open.length} most recently changed of ${a.open}` : "";
  keyedRows($("recent-activity"), a.recent_activity.slice(0, ACTIVITY_ROWS), (o) => o.id,
    (o) => [o.id, o.symbol, o.side, stateChip(o), `${o.filled} / ${o.quantity}`, o.price ?? "–"]);

  // 2. latency (first exchange drives the chart; all are listed)
  const exchanges = Object.entries(s.latency);
  $("latency-kpis").replaceChildren(...exchanges.flatMap(([ex, q]) => ["p50", "p95", "p99"].map((k) => {
    const d = document.createElement("div");
    d.append(text("span", q[k] === null ? "–" : (q[k] * 1000).toFixed(2), "kpi"), text("label", `${k} ms ${ex}`));
    return d;
  })));
  const q0 = exchanges.length ? exchanges[0][1] : {};
  ["p50", "p95", "p99"].forEach((k, i) => push(series.latency[i], q0[k] == null ? null : q0[k] * 1000));
  chart($("latency-chart"), series.latency);

  // 3. breaker
  const b = s.breaker;
  const names = Object.keys(b.state).length ? Object.keys(b.state) : ["venue"];
  $("breaker-states").replaceChildren(...names.map((n) => {
    const [label, cls] = BREAKER[b.state[n] ?? 0];
    return text("span", `${n}: ${label} · failures ${num(b.failures[n] ?? 0)}`, "chip " + cls);
  }));
  rows($("breaker-history"), b.transitions.map((t) => [new Date(t.time * 1000).toLocaleTimeString(), t.name, `${t.from} → ${t.to}`]));

  // 4. maker / taker
  const f = s.fills, maker = f.count.maker || 0, taker = f.count.taker || 0;
  $("maker-ratio").textContent = maker + taker ? ((100 * maker) / (maker + taker)).toFixed(1) + " %" : "–";
  $("maker-count").textContent = maker;
  $("taker-count").textContent = taker;
  rows($("fees"), Object.entries(f.fees).map(([k, v]) => { const [asset, liq] = k.split("/"); return [asset, liq, v.toFixed(6)]; }));
  push(series.fills[0], rate("maker", s.time, maker));
  push(series.fills[1], rate("taker", s.time, taker));
  chart($("fills-chart"), series.fills);

  // 5. rejections
  const r = s.rejections;
  $("reject-total").textContent = num(r.total);
  const rejectRate = rate("rejected", s.time, r.total);
  $("reject-rate").textContent = rejectRate === null ? "–" : rejectRate.toFixed(2);
  rows($("reject-reasons"), Object.entries(r.by_reason).sort((x, y) => y[1] - x[1]).slice(0, 10).map(([k, v]) => [k, num(v)]));
  push(series.rejects[0], rejectRate);
  chart($("reject-chart"), series.rejects);

  // 6. rate limits
  const l = s.rate_limits;
  $("limit-bars").replaceChildren(...Object.keys(l.limit).sort().map((w) => {
    const used = l.usage[w] || 0, limit = l.limit[w] || 0, frac = limit ? Math.min(1, used / limit) : 0;
    const box = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = "bar" + (frac > 0.9 ? " hot" : "");
    const fill = document.createElement("span");
    fill.style.width = (100 * frac).toFixed(1) + "%";
    bar.appendChild(fill);
    box.append(text("label", `${w}: ${used} / ${limit}`), bar);
    return box;
  }));
  rows($("limit-events"), Object.entries(l.reached).map(([k, v]) => [k, num(v)]));
  rows($("limit-endpoints"), Object.entries(l.requests_by_endpoint).sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, num(v)]));

  // 7. system health
  const h = s.health;
  $("uptime").textContent = duration(h.uptime_seconds);
  const errors = sum(h.requests_by_code) - (h.requests_by_code.ok || 0);
  const errRate = rate("errors", s.time, errors);
  $("error-rate").textContent = errRate === null ? "–" : errRate.toFixed(2);
  $("in-flight").textContent = num(h.in_flight);
  const deps = Object.keys(h.checks).length ? Object.entries(h.checks)
    : Object.entries(h.dependencies).map(([k, v]) => [k, v ? "healthy" : "unhealthy"]);
  deps.push(["user_stream socket", h.user_stream_connected ? `connected, lag ${h.user_stream_lag_seconds.toFixed(2)} s` : "disconnected"]);
  const x = s.extra || {};  // [venue] order_transport = "ws": the WebSocket API connection
  if (x.ws_api_state) deps.push(["order transport", x.ws_api_state === "connected"
    ? `connected: WebSocket API, ${x.ws_api_reconnects} reconnects`
    : `${x.ws_api_state}: orders over REST (${x.ws_api_fallbacks} so far)`]);
  rows($("dependencies"), deps.map(([k, v]) => [k, text("span", v, "chip " + (v === "healthy" || v.startsWith("connected") ? "ok" : "bad"))]));
  rows($("errors"), [
    ...Object.entries(h.requests_by_code).filter(([k]) => k !== "ok").map(([k, v]) => [k, num(v)]),
    ...Object.entries(h.venue_errors).map(([k, v]) => ["venue " + k, num(v)]),
  ]);

  // 8. positions and 9. balances (the daemon's own account view; no venue round trip)
  const acct = s.account;
  $("account-state").textContent = !acct ? "no account view" : acct.stale ? "refreshing" : "current";
  $("account-state").className = "chip " + (!acct ? "" : acct.stale ? "warn" : "ok");
  keyedRows($("positions"), acct ? acct.positions : [], (p) => p.symbol + "/" + p.position_side,
    (p) => [p.symbol, p.position_side, signed(p.amount), p.entry_price, p.break_even_price, p.mark_price,
      signed(p.unrealized_pnl), p.liquidation_price, p.leverage ? p.leverage + "x" : "–", p.margin_type || "–"]);
  keyedRows($("balances"), acct ? acct.balances : [], (b) => b.asset,
    (b) => [b.asset, b.wallet_balance, b.available_balance, b.margin_balance, signed(b.unrealized_pnl)]);

  $("updated").textContent = "updated " + new Date(s.time * 1000).toLocaleTimeString();
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
}

function connect() {
  const token = new URLSearchParams(location.search).get("access_token");
  const url = "/dashboard/stream" + (token ? "?access_token=" + encodeURIComponent(token) : "");
  const source = new EventSource(url);
  source.onopen = () => { $("conn").textContent = "live"; $("conn").className = "badge ok"; };
  source.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "badge bad"; };
  source.onmessage = (event) => render(JSON.parse(event.data));
}

connect();
