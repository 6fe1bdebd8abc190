// Small helpers: building DOM nodes without innerHTML (every string the
// API returns goes in as text), and formatting figures for people.

// h('a#id.link', {href: '#'}, 'text', child...) -> element. The tag may
// carry an id after '#' and classes after dots. Attributes starting with
// "on" are listeners.
export function h(tag, attrs, ...children) {
  const [name, ...parts] = tag.split(/(?=[#.])/);
  const el = document.createElement(name);
  for (const p of parts) {
    if (p[0] === '#') el.id = p.slice(1);
    else el.classList.add(p.slice(1));
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the CSP
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function fmtBytes(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '-';
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[i]}`;
}

export function fmtCount(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '-';
}

// Seconds -> "1.234 s", "3 min 20 s", "2 h 5 min", "3 d 4 h".
export function fmtDuration(s) {
  if (typeof s !== 'number' || !isFinite(s)) return '-';
  if (s < 60) return `${s.toFixed(s < 10 ? 3 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

// Nanoseconds since the epoch (as the API's *_ns numbers, which JSON
// gives to JavaScript rounded to about a microsecond) -> UTC text.
export function fmtNs(ns) {
  const v = Number(ns);
  if (!v || v <= 0) return '-';
  return fmtIso(new Date(v / 1e6).toISOString());
}

// "2025-01-01T00:00:00.595121545Z" -> "2025-01-01 00:00:00.595121545Z"
export function fmtIso(s) {
  return typeof s === 'string' ? s.replace('T', ' ') : '-';
}

// The API's error offsets count UTF-8 bytes; inputs count UTF-16 units.
export function byteToCharOffset(s, bytes) {
  const enc = new TextEncoder();
  let b = 0;
  let i = 0;
  for (const ch of s) {
    if (b >= bytes) break;
    b += enc.encode(ch).length;
    i += ch.length;
  }
  return i;
}

// Copies text; navigator.clipboard needs a secure context (loopback is
// one), the textarea fallback covers the rest.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { style: 'position:fixed;left:-9999px' }, text);
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

// A shell word in single quotes.
export function shq(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}
