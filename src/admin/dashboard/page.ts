// The dashboard page, embedded as a string (tsc copies no non-TS assets). Every value from the payload reaches
// the DOM through textContent or attributes set by the DOM API: route names are config, paths are attacker input.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sidecar dashboard</title>
<link rel="stylesheet" href="/dashboard/uplot.css">
<style>
body{font:14px system-ui,sans-serif;margin:0;padding:12px;background:#fafafa;color:#222}
h1{font-size:18px;margin:0 0 8px}h2{font-size:15px;margin:16px 0 6px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:8px}
.tile{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}.tile b{display:block;font-size:22px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:8px}
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px;overflow:hidden}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;font-size:13px;word-break:break-all}
.empty{color:#888;font-style:italic}
tr.down td{color:#c22}
</style></head><body>
<h1>sidecar dashboard <span id="status" class="empty">connecting…</span></h1>
<div class="tiles">
<div class="tile">app rps<b id="rps-app">–</b></div>
<div class="tile">upstream rps (with retries)<b id="rps-up">–</b></div>
<div class="tile">success rate<b id="success">–</b></div>
<div class="tile">p99 (15 min, all listeners)<b id="p99">–</b></div>
</div>
<h2>Latency, last 15 minutes (p50/p90/p99/p99.9, ms)</h2><div id="charts" class="charts"></div>
<h2>Clusters</h2><div id="clusters"></div>
<h2>Failed recent requests</h2><div id="failed"></div>
<h2>Slowest recent requests</h2><div id="slowest"></div>
<script src="/dashboard/uplot.js"></script>
<script src="/dashboard/app.js"></script>
</body></html>
`;

export const DASHBOARD_JS = `'use strict';
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
const fmt = (v) => v === undefined || v === null ? '–' : (v < 10 ? v.toFixed(2) : v.toFixed(0));
const charts = new Map();
function empty(box, text) { box.replaceChildren(el('p', text, 'empty')); }
function table(box, rows, emptyText) {
  if (rows.length === 0) return empty(box, emptyText);
  const t = el('table'); const h = el('tr');
  for (const c of ['id', 'status', 'ms', 'flag', 'request', 'route', 'cluster', 'attempts']) h.append(el('th', c));
  t.append(h);
  for (const r of rows) {
    const tr = el('tr'); const td = el('td'); const a = el('a', r.id);
    a.href = '/debug/requests/' + encodeURIComponent(r.id); td.append(a); tr.append(td);
    for (const v of [r.status, r.durationMs.toFixed(1), r.flag || '-', r.method + ' ' + r.path, r.route || '-', r.cluster || '-', r.attempts]) tr.append(el('td', v));
    t.append(tr);
  }
  box.replaceChildren(t);
}
// One row per endpoint: where it came from, whether it takes traffic, and why not (health check, outlier ejection).
function clusterTable(box, clusters) {
  const t = el('table'); const h = el('tr');
  for (const c of ['cluster', 'endpoint', 'source', 'zone', 'health', 'ejected', 'ejections', 'active', 'requests', 'failures', 'connections']) h.append(el('th', c));
  t.append(h);
  for (const c of clusters) {
    const eps = Array.isArray(c.endpoints) ? c.endpoints : [];
    if (eps.length === 0) { const tr = el('tr'); tr.append(el('td', c.name), el('td', 'no endpoints', 'empty')); t.append(tr); continue; }
    for (const e of eps) {
      const tr = el('tr', undefined, e.routable === false ? 'down' : '');
      const ejected = e.ejected ? 'until ' + (e.ejected_until ? new Date(e.ejected_until).toLocaleTimeString() : '?') : 'no';
      for (const v of [c.name + (c.panic ? ' (panic)' : ''), e.address, e.source, e.zone || '-', e.health, ejected, e.ejections, e.active_requests, e.requests, e.failures, e.connections]) tr.append(el('td', v === undefined || v === null ? '-' : v));
      t.append(tr);
    }
  }
  box.replaceChildren(t);
}
// A chart is sized when created, before the grid has placed its siblings (and again when the window changes).
function fit() { for (const c of charts.values()) { const w = Math.max(260, c.box.clientWidth - 12); if (c.u.width !== w) c.u.setSize({ width: w, height: 160 }); } }
window.addEventListener('resize', fit);
function chart(kind, s) {
  const key = kind + ':' + s.name;
  const xs = s.minutes.map((m) => m.minute * 60);
  const ys = ['p50', 'p90', 'p99', 'p999'].map((q) => s.minutes.map((m) => m[q] === undefined ? null : m[q]));
  const data = [xs, ...ys];
  let c = charts.get(key);
  if (!c) {
    const box = el('div', undefined, 'chart'); box.append(el('div', kind + ' ' + s.name));
    $('charts').append(box);
    const width = Math.max(280, box.clientWidth - 12);
    const u = new uPlot({ width, height: 160, series: [{}, { label: 'p50', stroke: '#2a7' }, { label: 'p90', stroke: '#27c' }, { label: 'p99', stroke: '#e80' }, { label: 'p99.9', stroke: '#c22' }] }, data, box);
    c = { u, box }; charts.set(key, c);
  } else c.u.setData(data);
}
function render(p) {
  $('status').textContent = 'live ' + new Date(p.at).toLocaleTimeString();
  $('rps-app').textContent = p.rps.app.toFixed(1);
  $('rps-up').textContent = p.rps.upstream.toFixed(1);
  $('success').textContent = p.successRate !== undefined ? (p.successRate * 100).toFixed(1) + '%' : p.successWindowS > 0 ? 'no requests in ' + p.successWindowS + ' s' : 'measuring…';
  const ls = p.series.listener; let p99;
  for (const s of ls) if (s.window.p99 !== undefined) p99 = Math.max(p99 || 0, s.window.p99);
  const none = p.historyOff ? 'latency history is off (admin.latency_history.enabled: false)' : 'no traffic yet';
  $('p99').textContent = p99 === undefined ? none : fmt(p99) + ' ms';
  const any = ['listener', 'route', 'cluster', 'endpoint'].some((k) => p.series[k].length > 0);
  if (!any) empty($('charts'), none);
  else { const e = $('charts').querySelector('.empty'); if (e) e.remove(); for (const k of ['listener', 'route', 'cluster', 'endpoint']) for (const s of p.series[k]) chart(k, s); fit(); }
  const cl = p.clusters && Array.isArray(p.clusters.clusters) ? p.clusters.clusters : [];
  if (cl.length === 0) empty($('clusters'), 'no clusters');
  else clusterTable($('clusters'), cl);
  table($('failed'), p.failed, 'no failed requests');
  table($('slowest'), p.slowest, 'no traffic yet');
}
const es = new EventSource('/dashboard/events');
es.onmessage = (e) => render(JSON.parse(e.data));
es.onerror = () => { $('status').textContent = 'disconnected, retrying…'; };
`;
