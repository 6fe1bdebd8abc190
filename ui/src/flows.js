// Flow explorer: GET /api/v1/flows one page at a time (the API's cursor;
// never the whole list), a filter in the flow filter language
// (docs/filter.md) with the API's error and its position, a time range,
// sortable columns, and per flow its details and its pcap.

import { apiPath, apiUrl, getJson, ApiError } from './api.js';
import { go, href } from './router.js';
import { readRange, rangeControls, rangeToApi, rangeToParams } from './timerange.js';
import { h, fmtBytes, fmtCount, fmtDuration, fmtIso, byteToCharOffset, copyText, shq } from './util.js';

const SORTS = ['time', 'bytes', 'packets', 'duration'];
const DEFAULT_ORDER = { time: 'asc', bytes: 'desc', packets: 'desc', duration: 'desc' };
const LIMITS = [25, 50, 100, 500];
const DEFAULT_LIMIT = 50;

// next cursor -> the cursor of the page before it ('' the first page),
// learnt while paging, so "previous" works with the browser's history.
const prevOf = new Map();

function readState(params) {
  const sort = SORTS.includes(params.get('sort')) ? params.get('sort') : 'time';
  const order = ['asc', 'desc'].includes(params.get('order')) ? params.get('order') : '';
  const limit = LIMITS.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : DEFAULT_LIMIT;
  return {
    filter: params.get('filter') || '',
    ...readRange(params),
    sort,
    order,
    limit,
    cursor: params.get('cursor') || '',
    flow: params.get('flow') || '',
  };
}

function toParams(s) {
  return {
    filter: s.filter,
    ...rangeToParams(s),
    sort: s.sort === 'time' ? '' : s.sort,
    order: s.order,
    limit: s.limit === DEFAULT_LIMIT ? '' : s.limit,
    cursor: s.cursor,
    flow: s.flow,
  };
}

const orderOf = (s) => s.order || DEFAULT_ORDER[s.sort];
const pcapPath = (id) => `api/v1/flows/${id}/pcap`;
const endpoint = (f) => (f.client_port || f.server_port ? `:${f.client_port}` : '');
const peer = (addr, port, f) =>
  f.client_port || f.server_port ? (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`) : addr;

export function renderFlows(root, params) {
  const s = readState(params);
  const nav = (patch, opts) => go('flows', toParams({ ...s, ...patch }), opts);

  // ---- the query form ----
  const filter = h('input#filter', {
    name: 'filter',
    value: s.filter,
    placeholder: "flow filter, e.g. host 10.0.0.1 and dst port 443 and bytes > 1M",
    spellcheck: 'false',
    autocomplete: 'off',
    'aria-label': 'flow filter',
  });
  const range = rangeControls(s);
  const limit = h(
    'select',
    { name: 'limit', 'aria-label': 'rows per page' },
    LIMITS.map((n) => h('option', { value: n, selected: n === s.limit }, `${n} rows`)),
  );
  const form = h(
    'form.query',
    {
      onsubmit: (e) => {
        e.preventDefault();
        nav({ filter: filter.value.trim(), ...range.value(), limit: Number(limit.value), cursor: '', flow: '' });
      },
    },
    filter,
    range.el,
    limit,
    h('button', { type: 'submit' }, 'Search'),
  );
  const errBox = h('div#flows-error.error', { role: 'alert', hidden: true });

  // ---- the table ----
  const head = h(
    'tr',
    {},
    h('th.num', {}, 'ID'),
    sortTh('time', 'First seen'),
    sortTh('duration', 'Duration'),
    h('th', {}, 'Proto'),
    h('th', {}, 'Client'),
    h('th', {}, 'Server'),
    sortTh('packets', 'Packets', 'num'),
    sortTh('bytes', 'Bytes', 'num'),
    h('th', {}, 'End'),
    h('th', {}, ''),
  );
  function sortTh(key, label, cls) {
    const active = s.sort === key;
    const ord = orderOf(s);
    const arrow = active ? (ord === 'asc' ? ' ▲' : ' ▼') : '';
    return h(
      'th' + (cls ? `.${cls}` : ''),
      { 'aria-sort': active ? (ord === 'asc' ? 'ascending' : 'descending') : 'none' },
      h(
        'button.sort',
        {
          type: 'button',
          'data-sort': key,
          title: `sort by ${label.toLowerCase()}`,
          onclick: () => {
            const order = active ? (ord === 'asc' ? 'desc' : 'asc') : '';
            nav({ sort: key, order, cursor: '' });
          },
        },
        label + arrow,
      ),
    );
  }
  const body = h('tbody');
  const table = h('table#flows.flows', {}, h('thead', {}, head), body);
  const info = h('span.info');
  const pager = h('div.pager', {}, info);
  const details = h('aside#details.details', { hidden: true });

  root.replaceChildren(
    h('section.page', {}, h('h1', {}, 'Flows'), form, errBox, h('div.tablewrap', {}, table), pager),
    details,
  );

  const q = {
    filter: s.filter,
    ...rangeToApi(s),
    sort: s.sort,
    order: s.order,
    limit: s.limit,
    cursor: s.cursor,
  };
  body.replaceChildren(h('tr', {}, h('td.muted', { colspan: 10 }, 'loading…')));
  getJson('api/v1/flows', q)
    .then((page) => {
      showRows(page);
      if (s.flow) showDetails(page.flows.find((f) => String(f.id) === s.flow));
    })
    .catch((e) => {
      body.replaceChildren();
      showError(e);
      if (s.flow) showDetails();
    });

  function showError(e) {
    errBox.hidden = false;
    if (e instanceof ApiError && e.error === 'bad filter' && e.at !== undefined) {
      const from = byteToCharOffset(s.filter, e.at);
      const to = byteToCharOffset(s.filter, e.at + (e.length || 1));
      const caret = ' '.repeat(from) + '^'.repeat(Math.max(1, to - from));
      errBox.replaceChildren(
        h('div.msg', {}, h('b', {}, 'bad filter: '), e.detail, ` (at character ${from + 1})`),
        h('pre.caret', {}, s.filter, '\n', caret),
      );
      filter.setAttribute('aria-invalid', 'true');
      filter.focus();
      filter.setSelectionRange(from, Math.max(from + 1, to));
    } else {
      errBox.replaceChildren(h('div.msg', {}, h('b', {}, `${e.error || 'error'}: `), e.detail || e.message));
    }
  }

  function showRows(page) {
    if (!page.flows.length) {
      body.replaceChildren(h('tr', {}, h('td.muted', { colspan: 10 }, 'no flows match')));
    } else {
      body.replaceChildren(...page.flows.map(row));
    }
    if (page.next_cursor) prevOf.set(page.next_cursor, s.cursor);
    const buttons = [];
    if (s.cursor) {
      const prev = prevOf.get(s.cursor);
      buttons.push(
        prev !== undefined
          ? h('button#prev', { type: 'button', onclick: () => nav({ cursor: prev, flow: '' }) }, '◀ Previous')
          : h('button#first', { type: 'button', onclick: () => nav({ cursor: '', flow: '' }) }, '⏮ First page'),
      );
    }
    if (page.next_cursor) {
      buttons.push(
        h('button#next', { type: 'button', onclick: () => nav({ cursor: page.next_cursor, flow: '' }) }, 'Next ▶'),
      );
    }
    info.textContent = `${page.count} flow${page.count === 1 ? '' : 's'} on this page` +
      (page.next_cursor ? ', more after it' : s.cursor ? ', the last page' : '');
    pager.replaceChildren(info, ...buttons);
  }

  function row(f) {
    const open = () => nav({ flow: String(f.id) });
    return h(
      'tr',
      {
        'data-id': f.id,
        class: String(f.id) === s.flow ? 'selected' : null,
        // a click on the row (not on a link) opens its details
        onclick: (e) => e.target.closest('a') || open(),
      },
      h('td.num', {}, f.id),
      h('td.time', { title: f.first }, fmtIso(f.first)),
      h('td.num', { title: `${f.duration} s` }, fmtDuration(f.duration)),
      h('td', {}, f.proto_name || f.proto),
      h('td.addr', {}, peer(f.client, f.client_port, f)),
      h('td.addr', {}, peer(f.server, f.server_port, f)),
      h('td.num', {}, fmtCount(f.packets)),
      h('td.num', { title: `${f.bytes} bytes` }, fmtBytes(f.bytes)),
      h('td', {}, f.end, f.partial ? ' (partial)' : ''),
      h('td.actions', {}, h('a.details', { href: href('flows', toParams({ ...s, flow: String(f.id) })) }, 'details'), ' ', pcapLink(f)),
    );
  }

  function pcapLink(f) {
    if (f.packets_available && f.packets_available !== 'yes') {
      return h('span.muted', { title: 'a flow is given whole or not at all' }, `packets ${f.packets_available}`);
    }
    return h('a.pcap', { href: pcapPath(f.id), download: '', title: `flow-${f.id}${endpoint(f)}… .pcap` }, 'download pcap');
  }

  async function showDetails(f) {
    details.hidden = false;
    details.replaceChildren(h('p.muted', {}, 'loading…'));
    if (!f) {
      try {
        f = await getJson(`api/v1/flows/${encodeURIComponent(s.flow)}`);
      } catch (e) {
        details.replaceChildren(closeButton(), h('p.error', {}, `flow ${s.flow}: ${e.message}`));
        return;
      }
    }
    const curl = `curl -OJ ${shq(apiUrl(pcapPath(f.id)))}`;
    const copied = h('span.muted');
    details.replaceChildren(
      closeButton(),
      h('h2', {}, `Flow ${f.id}`),
      h('p', {}, pcapLink(f)),
      h(
        'div.curl',
        {},
        h('code#curl', {}, curl),
        h(
          'button#copy-curl',
          {
            type: 'button',
            onclick: async () => {
              copied.textContent = (await copyText(curl)) ? ' copied' : ' copy failed: select the text';
            },
          },
          'Copy',
        ),
        copied,
      ),
      h(
        'table.fields',
        {},
        h(
          'tbody',
          {},
          Object.entries(f).map(([k, v]) =>
            h('tr', { 'data-field': k }, h('th', {}, k), h('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))),
          ),
        ),
      ),
      h('p.muted', {}, 'JSON: ', h('a', { href: apiPath(`api/v1/flows/${f.id}`), target: '_blank' }, `api/v1/flows/${f.id}`)),
    );
  }

  function closeButton() {
    return h('button.close', { type: 'button', title: 'close', onclick: () => nav({ flow: '' }) }, '✕');
  }
}
