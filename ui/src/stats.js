// The dashboard's statistics: a throughput chart (uPlot) from
// GET /api/v1/stats/timeseries and the top keys (hosts by default) from
// GET /api/v1/stats/top, over the time range and grouping in the URL.
// A server without those routes (404) gets a note instead.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { getJson, hasRoute } from './api.js';
import { go, href } from './router.js';
import { readRange, rangeControls, rangeToApi, rangeToParams } from './timerange.js';
import { h, fmtBytes, fmtCount } from './util.js';

const REFRESH_MS = 30000; // an aggregation reads every flow of the range
const BYS = { host: 'hosts', src: 'clients', dst: 'servers', port: 'server ports', proto: 'protocols', pair: 'host pairs' };
const METRICS = ['bytes', 'packets', 'flows'];

function readState(params) {
  return {
    ...readRange(params, 'all'),
    by: BYS[params.get('by')] ? params.get('by') : 'host',
    metric: METRICS.includes(params.get('metric')) ? params.get('metric') : 'bytes',
  };
}

function toParams(s) {
  return { ...rangeToParams(s), by: s.by === 'host' ? '' : s.by, metric: s.metric === 'bytes' ? '' : s.metric };
}

// bits per second with SI prefixes
function fmtBps(v) {
  if (v == null) return '-';
  const u = ['b/s', 'kb/s', 'Mb/s', 'Gb/s', 'Tb/s'];
  let i = 0;
  while (Math.abs(v) >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 && i ? 1 : 0)} ${u[i]}`;
}

// The label of a top entry, and a flow filter that selects its flows.
function keyOf(by, e) {
  switch (by) {
    case 'pair':
      return { label: `${e.a} ↔ ${e.b}`, filter: `host ${e.a} and host ${e.b}` };
    case 'port':
      return e.port == null
        ? { label: e.proto_name || String(e.proto), filter: `proto ${e.proto}` }
        : { label: `${e.port}/${e.proto_name || e.proto}`, filter: `proto ${e.proto} and dst port ${e.port}` };
    case 'proto':
      return { label: e.proto_name || String(e.proto), filter: `proto ${e.proto}` };
    case 'src':
      return { label: e.host, filter: `src host ${e.host}` };
    case 'dst':
      return { label: e.host, filter: `dst host ${e.host}` };
    default:
      return { label: e.host, filter: `host ${e.host}` };
  }
}

export function renderStats(root, params) {
  const s = readState(params);
  let stopped = false;
  let timer = 0;
  let plot = null;
  root.replaceChildren(h('p.muted', {}, 'statistics: loading…'));

  hasRoute('api/v1/stats/top', { limit: 1 }).then((yes) => {
    if (stopped) return;
    if (!yes) {
      root.replaceChildren(h('p#stats-missing.muted', {}, 'statistics (throughput chart, top hosts): this server has no /api/v1/stats routes'));
      return;
    }
    build();
  });

  function build() {
    const range = rangeControls(s);
    const by = h('select', { name: 'by', 'aria-label': 'top by' }, Object.entries(BYS).map(([k, v]) => h('option', { value: k, selected: k === s.by }, `top ${v}`)));
    const metric = h('select', { name: 'metric', 'aria-label': 'rank by' }, METRICS.map((m) => h('option', { value: m, selected: m === s.metric }, `by ${m}`)));
    const form = h(
      'form.query',
      {
        onsubmit: (e) => {
          e.preventDefault();
          go('dashboard', toParams({ ...range.value(), by: by.value, metric: metric.value }));
        },
      },
      range.el,
      by,
      metric,
      h('button', { type: 'submit' }, 'Show'),
    );
    const chart = h('section.card#throughput', {}, h('h2', {}, 'Throughput'), h('p.muted', {}, 'loading…'));
    const top = h('section.card#top', {}, h('h2', {}, `Top ${BYS[s.by]} by ${s.metric}`), h('p.muted', {}, 'loading…'));
    const err = h('div#stats-error.error', { role: 'alert', hidden: true });
    root.replaceChildren(h('h2', {}, 'Traffic'), form, err, h('div.charts', {}, chart, top));

    async function tick() {
      const q = rangeToApi(s);
      try {
        const [ts, tp] = await Promise.all([
          getJson('api/v1/stats/timeseries', q),
          getJson('api/v1/stats/top', { ...q, by: s.by, metric: s.metric, limit: 10 }),
        ]);
        if (stopped) return;
        err.hidden = true;
        drawChart(chart, ts);
        drawTop(top, tp);
      } catch (e) {
        if (stopped) return;
        err.hidden = false;
        err.textContent = `statistics: ${e.message}`;
      }
      if (!stopped) timer = setTimeout(tick, REFRESH_MS);
    }
    tick();
  }

  function drawChart(el, ts) {
    const pts = ts.points || [];
    const xs = [];
    const c2s = [];
    const s2c = [];
    for (let i = 0; i < pts.length; i++) {
      const t = Number(pts[i].t_ns); // exact strings (api.js): to seconds
      const from = Math.max(t, Number(ts.since_ns));
      const to = i + 1 < pts.length ? Number(pts[i + 1].t_ns) : Number(ts.until_ns);
      const secs = Math.max(to - from, 1e6) / 1e9;
      xs.push(t / 1e9);
      c2s.push((8 * pts[i].c2s_bytes) / secs);
      s2c.push((8 * pts[i].s2c_bytes) / secs);
    }
    el.dataset.points = String(pts.length);
    const box = h('div.plot');
    el.replaceChildren(
      h('h2', {}, 'Throughput'),
      h('p.muted', {}, `${fmtBytes(ts.totals.bytes)} in ${fmtCount(ts.totals.flows)} flows, steps of ${fmtStep(ts.step_ns)}`),
      box,
    );
    if (plot) plot.destroy();
    plot = null;
    if (!pts.length) {
      box.append(h('p.muted', {}, 'no traffic in this range'));
      return;
    }
    const width = Math.max(300, el.clientWidth - 24);
    plot = new uPlot(
      {
        width,
        height: 260,
        series: [
          { value: (u, v) => (v == null ? '-' : new Date(v * 1000).toISOString().replace('T', ' ').slice(0, 19)) },
          { label: 'client → server', stroke: '#0b63c5', fill: 'rgba(11,99,197,0.08)', value: (u, v) => fmtBps(v) },
          { label: 'server → client', stroke: '#d9480f', fill: 'rgba(217,72,15,0.08)', value: (u, v) => fmtBps(v) },
        ],
        axes: [{}, { values: (u, vals) => vals.map(fmtBps), size: 70 }],
        scales: { x: { time: true } },
        tzDate: (t) => uPlot.tzDate(new Date(t * 1000), 'Etc/UTC'),
      },
      [xs, c2s, s2c],
      box,
    );
  }

  function drawTop(el, tp) {
    const rows = tp.top.map((e, i) => {
      const k = keyOf(s.by, e);
      return h(
        'tr',
        { 'data-key': k.label },
        h('td.num', {}, i + 1),
        h('td.addr', {}, h('a', { href: href('flows', { filter: k.filter, ...rangeToParams(s), sort: 'bytes' }), title: `flows: ${k.filter}` }, k.label)),
        h('td.num', {}, fmtCount(e.flows)),
        h('td.num', {}, fmtCount(e.packets)),
        h('td.num', { title: `${e.bytes} bytes` }, fmtBytes(e.bytes)),
      );
    });
    el.replaceChildren(
      h('h2', {}, `Top ${BYS[s.by]} by ${s.metric}`),
      h(
        'table#top-hosts.small',
        {},
        h('thead', {}, h('tr', {}, ['#', s.by, 'flows', 'packets', 'bytes'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows),
      ),
      h('p.muted', {}, `${fmtCount(tp.keys)} ${BYS[s.by]} in all` + (tp.other && tp.other.keys ? `; ${fmtCount(tp.other.keys)} more not listed` : '')),
    );
  }

  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      if (plot) plot.destroy();
    },
  };
}

function fmtStep(step) {
  const ns = Number(step);
  const s = ns / 1e9;
  if (s < 1) return `${ns / 1e6} ms`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${s / 60} min`;
  if (s < 86400) return `${s / 3600} h`;
  return `${s / 86400} d`;
}
