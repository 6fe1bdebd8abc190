// The public REST API (docs/api.md), nothing else. Paths are relative to
// the page, so the UI works wherever the server (or a proxy) puts it.

// 'api/v1/flows', {filter: 'tcp', limit: 50} -> 'api/v1/flows?filter=tcp&limit=50'
// (empty and undefined values left out).
export function apiPath(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// The absolute address of an API path, for curl commands.
export function apiUrl(path) {
  return new URL(path, document.baseURI).href;
}

// An API error as the UI shows it: {status, error, detail, at, length}.
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.detail ? `${body.error}: ${body.detail}` : `HTTP ${status}`);
    this.status = status;
    this.error = (body && body.error) || `HTTP ${status}`;
    this.detail = (body && body.detail) || '';
    this.at = body && typeof body.at === 'number' ? body.at : undefined;
    this.length = body && typeof body.length === 'number' ? body.length : undefined;
  }
}

async function errorOf(r) {
  let body = null;
  try {
    body = await r.json();
  } catch {
    /* not JSON: the status says it */
  }
  return new ApiError(r.status, body);
}

// The API's nanosecond times (first_ns, t_ns, ...) are integers above
// 2^53, which JSON.parse would round: they are kept as their exact
// decimal strings instead (Number() of one is close enough to plot).
export function parseJson(text) {
  return JSON.parse(text.replace(/("[a-z_]*_ns"\s*:\s*)(\d{16,})/g, '$1"$2"'));
}

// A server started with --auth-token-file answers 401: the token is asked
// for once and kept in the cookie fv_token (SameSite=Strict, this tab's
// session), which the browser sends with every request of the page,
// downloads by link included. Resolves true when a token was given.
let asking = null;
export function askToken() {
  if (!asking) {
    asking = Promise.resolve().then(() => {
      const t = window.prompt('This flowvault API wants its access token (the first line of the --auth-token-file):');
      asking = null;
      if (!t) return false;
      const secure = location.protocol === 'https:' ? '; Secure' : '';
      document.cookie = `fv_token=${t.trim()}; path=/; SameSite=Strict${secure}`;
      return true;
    });
  }
  return asking;
}

// fetch, asking for the token when the server wants it (again when the
// one given was wrong, three times at most; a cancelled prompt ends it).
async function authFetch(url, opts) {
  let r = await fetch(url, opts);
  for (let i = 0; i < 3 && r.status === 401 && (await askToken()); i++) r = await fetch(url, opts);
  return r;
}

// GET a JSON answer; throws ApiError on a non-2xx answer.
export async function getJson(path, params, signal) {
  const r = await authFetch(apiPath(path, params), {
    headers: { Accept: 'application/json' },
    signal,
  });
  if (!r.ok) throw await errorOf(r);
  return parseJson(await r.text());
}

// Whether a route exists on this server (a 404 "not found" means no).
export async function hasRoute(path, params) {
  try {
    const r = await authFetch(apiPath(path, params), { headers: { Accept: 'application/json' } });
    return r.status !== 404;
  } catch {
    return false;
  }
}

// Asks for a download and stops at the headers: resolves when the server
// would send the file, throws ApiError with its message when it would
// not (bad BPF, bad time, expired packets). The server notices the
// dropped connection and reads no further.
export async function checkDownload(path) {
  const ac = new AbortController();
  const r = await authFetch(path, { signal: ac.signal });
  if (!r.ok) throw await errorOf(r);
  ac.abort();
}
