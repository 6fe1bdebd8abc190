// Dashboard: capture health from GET /api/v1/status (drops per worker,
// the disk budget and its use, how far back packets and flows go), and
// from the statistics routes a throughput chart and the top hosts
// (stats.js), refreshed every few seconds while the page is shown.

import { getJson } from './api.js';
import { renderStats } from './stats.js';
import { h, fmtBytes, fmtCount, fmtDuration, fmtNs } from './util.js';

const REFRESH_MS = 5000;

export function renderDashboard(root, params) {
  const health = h('div#health.cards', { 'aria-live': 'polite' }, h('p.muted', {}, 'loading…'));
  const err = h('div#dashboard-error.error', { role: 'alert', hidden: true });
  const stats = h('div#stats');
  root.replaceChildren(h('section.page', {}, h('h1', {}, 'Dashboard'), err, health, stats));

  let stopped = false;
  let timer = 0;
  const statsView = renderStats(stats, params);
  async function tick() {
    try {
      const st = await getJson('api/v1/status');
      if (stopped) return;
      err.hidden = true;
      health.replaceChildren(...cards(st));
      health.dataset.loaded = '1';
    } catch (e) {
      if (stopped) return;
      err.hidden = false;
      err.textContent = `status: ${e.message}`;
    }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  }
  tick();
  // The router calls this when another page replaces this one.
  return () => {
    stopped = true;
    clearTimeout(timer);
    statsView.stop();
  };
}

function card(id, title, ...body) {
  return h('section.card', { 'data-card': id }, h('h2', {}, title), ...body);
}

// A definition list of [label, value, key] rows; key names the figure
// for tests and links (data-figure).
function figures(rows) {
  return h(
    'dl.figures',
    {},
    rows.map(([label, value, key]) => [h('dt', {}, label), h('dd', { 'data-figure': key }, value)]),
  );
}

function windowOf(from, last) {
  if (!last) return 'empty';
  return `${fmtNs(from)} → ${fmtNs(last)} (${fmtDuration((Number(last) - Number(from)) / 1e9)})`;
}

function cards(st) {
  const cap = st.capture || {};
  const used = (st.segment_bytes || 0) + (st.index_file_bytes || 0);
  const pct = st.max_disk ? Math.min(100, (100 * used) / st.max_disk) : 0;
  const drops = (cap.kernel_drops || 0) + (cap.if_drops || 0) + (cap.nombuf || 0);
  const workers = cap.workers || [];
  // *_ns are exact decimal strings, or 0 (none)
  const pktFrom = Number(st.packets_from_ns) ? st.packets_from_ns : st.first_ns;
  const flowFrom = Number(st.flows_from_ns) ? st.flows_from_ns : st.flows_first_ns;

  const capture = card(
    'capture',
    'Capture',
    figures([
      ['recording', cap.recording ? 'yes' : 'no (an import, or no recorder running)', 'recording'],
      ['last commit', fmtNs(cap.last_commit_ns), 'last_commit'],
      ['drops (all workers)', fmtCount(drops), 'drops'],
      ['kernel / interface / no mbuf', `${fmtCount(cap.kernel_drops || 0)} / ${fmtCount(cap.if_drops || 0)} / ${fmtCount(cap.nombuf || 0)}`, 'drops_split'],
    ]),
    workers.length
      ? h(
          'table#workers.small',
          {},
          h('thead', {}, h('tr', {}, ['worker', 'packets', 'kernel drops', 'if drops', 'no mbuf', 'flow overflow', 'active flows', 'drop %'].map((t) => h('th', {}, t)))),
          h(
            'tbody',
            {},
            workers.map((w) => {
              const d = (w.kernel_drops || 0) + (w.if_drops || 0) + (w.nombuf || 0);
              const seen = (w.packets || 0) + d;
              return h(
                'tr',
                { 'data-worker': w.worker, class: d ? 'warn' : null },
                h('td', {}, w.worker),
                h('td.num', {}, fmtCount(w.packets)),
                h('td.num', {}, fmtCount(w.kernel_drops)),
                h('td.num', {}, fmtCount(w.if_drops)),
                h('td.num', {}, fmtCount(w.nombuf)),
                h('td.num', {}, fmtCount(w.overflow)),
                h('td.num', {}, fmtCount(w.flows_active)),
                h('td.num', {}, seen ? ((100 * d) / seen).toFixed(3) : '0'),
              );
            }),
          ),
        )
      : h('p.muted', { 'data-figure': 'workers_none' }, 'no live capture counters: drops per worker appear while `flowvault record` runs'),
  );

  const disk = card(
    'disk',
    'Disk',
    h('div.meter', { role: 'meter', 'aria-valuenow': pct.toFixed(1), 'aria-valuemin': 0, 'aria-valuemax': 100 }, h('div.bar', { style: `width:${pct.toFixed(1)}%` })),
    figures([
      ['budget (--max-disk)', fmtBytes(st.max_disk), 'max_disk'],
      ['in use (segments + index)', `${fmtBytes(used)} (${pct.toFixed(1)} %)`, 'disk_used'],
      ['segments', `${fmtCount(st.segment_files)} file${st.segment_files === 1 ? "" : "s"} of ${fmtBytes(st.segment_size)}, ${st.segments_per_worker} per worker × ${st.workers} worker${st.workers === 1 ? '' : 's'}`, 'segments'],
      ['packet data stored', fmtBytes(st.stored_bytes), 'stored_bytes'],
      ['index', `${fmtBytes(st.index_used_bytes)} used of ${fmtBytes(st.index_file_bytes)}`, 'index'],
    ]),
  );

  const retention = card(
    'retention',
    'Retention',
    figures([
      ['packets', windowOf(pktFrom, st.last_ns), 'packets_window'],
      ['flows', windowOf(flowFrom, st.flows_last_ns), 'flows_window'],
      ['flow records expired', fmtCount(st.flows_expired || 0), 'flows_expired'],
    ]),
    (st.retention || []).length > 1
      ? h(
          'table.small',
          {},
          h('thead', {}, h('tr', {}, ['worker', 'packets from', 'last'].map((t) => h('th', {}, t)))),
          h('tbody', {}, st.retention.map((r) => h('tr', {}, h('td', {}, r.worker), h('td', {}, fmtNs(Number(r.packets_from_ns) ? r.packets_from_ns : r.first_ns)), h('td', {}, fmtNs(r.last_ns))))),
        )
      : null,
  );

  const store = card(
    'store',
    'Store',
    figures([
      ['flows', fmtCount(st.flows), 'flows'],
      ['packets', fmtCount(st.packets), 'packets'],
      ['bytes', fmtBytes(st.bytes), 'bytes'],
      ['undecodable frames', fmtCount(st.undecodable), 'undecodable'],
      ['flow table overflow', fmtCount(st.flow_overflow), 'flow_overflow'],
      ['store', st.store, 'store'],
      ['version', st.version, 'version'],
    ]),
  );
  return [capture, disk, retention, store];
}
