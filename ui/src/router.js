// Hash routing: "#/flows?filter=tcp&sort=bytes" is the page and its
// whole state, so any view can be bookmarked, reloaded or shared.

export function current() {
  const hash = location.hash.replace(/^#/, '') || '/flows';
  const qi = hash.indexOf('?');
  const page = (qi < 0 ? hash : hash.slice(0, qi)).replace(/^\/+/, '') || 'flows';
  const params = new URLSearchParams(qi < 0 ? '' : hash.slice(qi + 1));
  return { page, params };
}

export function href(page, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return `#/${page}${s ? `?${s}` : ''}`;
}

// Goes to page with params (a new history entry unless replace).
export function go(page, params, { replace = false } = {}) {
  const to = href(page, params);
  if (to === location.hash) {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else if (replace) {
    history.replaceState(null, '', to);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = to;
  }
}
