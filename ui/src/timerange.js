// The time range of a query: a preset relative to now (the API's own
// relative times, so a bookmark of "last hour" stays the last hour), all
// of the store, or a custom since/until in any form the API takes.

import { h } from './util.js';

export const PRESETS = [
  { id: '15m', label: 'last 15 min', since: '-15m' },
  { id: '1h', label: 'last hour', since: '-1h' },
  { id: '24h', label: 'last 24 h', since: '-24h' },
  { id: 'all', label: 'all', since: '' },
  { id: 'custom', label: 'custom', since: null },
];

// URL params -> {range, since, until}
export function readRange(params, dflt = 'all') {
  let range = params.get('range') || dflt;
  if (!PRESETS.some((p) => p.id === range)) range = dflt;
  return {
    range,
    since: range === 'custom' ? params.get('since') || '' : '',
    until: range === 'custom' ? params.get('until') || '' : '',
  };
}

// {range, since, until} -> the API's since/until parameters.
export function rangeToApi(r) {
  if (r.range === 'custom') return { since: r.since, until: r.until };
  const p = PRESETS.find((x) => x.id === r.range);
  return { since: p ? p.since : '', until: '' };
}

// {range, since, until} -> URL params (custom bounds only when custom).
export function rangeToParams(r) {
  return r.range === 'custom'
    ? { range: 'custom', since: r.since, until: r.until }
    : { range: r.range };
}

// The form controls; value() reads them back.
export function rangeControls(r) {
  const sel = h(
    'select',
    { name: 'range', 'aria-label': 'time range' },
    PRESETS.map((p) => h('option', { value: p.id, selected: p.id === r.range }, p.label)),
  );
  const hint = '2026-11-22T10:00:00Z, 1700000000 or -2h';
  const since = h('input', { name: 'since', value: r.since, placeholder: `since: ${hint}`, size: 24 });
  const until = h('input', { name: 'until', value: r.until, placeholder: 'until (empty: now)', size: 24 });
  const custom = h('span.custom', {}, since, ' to ', until);
  const sync = () => {
    custom.hidden = sel.value !== 'custom';
  };
  sel.addEventListener('change', sync);
  sync();
  return {
    el: h('span.range', {}, sel, custom),
    value: () => ({ range: sel.value, since: since.value.trim(), until: until.value.trim() }),
  };
}
