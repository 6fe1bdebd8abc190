// The web UI in headless Chromium, driven by playwright-core (from
// ui/node_modules; no browser download): test_ui.sh starts the server and
// runs this with
//   node ui_check.mjs URL FLOWVAULT STORE TMPDIR CHROMIUM STATS(0|1)
// It prints "ok ..." / "FAIL ..." lines and exits 1 on any failure. Every
// figure it checks is compared with the API's own answer or with the
// command line (flowvault extract), never with itself.

import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [U, FV, STORE, T, CHROME, STATS] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../ui/package.json'));
const { chromium } = require('playwright-core');

let failures = 0;
const ok = (m) => console.log(`ok   ${m}`);
const bad = (m) => {
  console.log(`FAIL ${m}`);
  failures++;
};
const check = (cond, m, why = '') => (cond ? ok(m) : bad(why ? `${m}: ${why}` : m));

async function api(p) {
  const r = await fetch(`${U}/${p}`);
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
  return r.json();
}

const FILTER = 'tcp and bytes > 10k';
const shots = process.env.FV_UI_SHOTS || T;
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: CHROME,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 900 } });
const page = await ctx.newPage();
const problems = [];
page.on('console', (m) => {
  // The bad filter and BPF below are 400s on purpose; Chromium logs them.
  if (m.type() === 'error' && !/status of 400 \(Bad Request\)/.test(m.text())) problems.push(`console: ${m.text()}`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
// Every request the page makes stays on the server (offline: no CDN).
page.on('request', (r) => {
  if (!r.url().startsWith(U) && !r.url().startsWith('data:')) problems.push(`request outside the server: ${r.url()}`);
});

const rowIds = () => page.$$eval('#flows tbody tr[data-id]', (trs) => trs.map((t) => Number(t.dataset.id)));
// Waits for the table to show the given ids (the API's answer).
async function waitRows(ids, what) {
  try {
    await page.waitForFunction(
      (want) => {
        const got = [...document.querySelectorAll('#flows tbody tr[data-id]')].map((t) => Number(t.dataset.id));
        return got.length === want.length && got.every((v, i) => v === want[i]);
      },
      ids,
      { timeout: 10000 },
    );
    ok(`${what}: the ${ids.length} rows the API gives, in its order`);
  } catch {
    bad(`${what}: rows ${JSON.stringify((await rowIds()).slice(0, 8))}… want ${JSON.stringify(ids.slice(0, 8))}…`);
  }
}

try {
  // ---- flow explorer ----
  await page.goto(`${U}/`);
  const first = await api('api/v1/flows?limit=50');
  await waitRows(first.flows.map((f) => f.id), 'flow explorer at / (default page, 50 rows)');
  check(await page.isVisible('#next'), 'a "Next" button (more flows than a page)');

  await page.fill('#filter', FILTER);
  await page.press('#filter', 'Enter');
  const q = `filter=${encodeURIComponent(FILTER)}`;
  const filtered = await api(`api/v1/flows?${q}&limit=50`);
  await waitRows(filtered.flows.map((f) => f.id), `filter '${FILTER}' typed and entered`);
  check(page.url().includes('filter=tcp+and+bytes'), 'the filter is in the URL', page.url());

  await page.click('button.sort[data-sort=bytes]');
  const byBytes = await api(`api/v1/flows?${q}&sort=bytes&limit=50`);
  await waitRows(byBytes.flows.map((f) => f.id), 'sorted by bytes (click on the column)');
  const bytesSort = await page.getAttribute('th:has(button[data-sort=bytes])', 'aria-sort');
  check(bytesSort === 'descending', 'the bytes column says descending', bytesSort);
  const b = byBytes.flows.map((f) => f.bytes);
  check(b.every((v, i) => i === 0 || b[i - 1] >= v), 'bytes do not increase down the page');

  // Paging with the API's cursor, and back.
  await page.click('#next');
  const page2 = await api(`api/v1/flows?${q}&sort=bytes&limit=50&cursor=${byBytes.next_cursor}`);
  await waitRows(page2.flows.map((f) => f.id), 'next page (the API cursor)');
  check(page.url().includes(`cursor=${byBytes.next_cursor}`), 'the cursor is in the URL');
  await page.click('#prev');
  await waitRows(byBytes.flows.map((f) => f.id), 'previous page');

  // Bookmark: the URL alone gives the same view.
  const bookmark = page.url();
  await page.goto('about:blank');
  await page.goto(bookmark);
  await waitRows(byBytes.flows.map((f) => f.id), 'the bookmarked URL, loaded anew');

  // Details of the biggest flow: every field of GET /api/v1/flows/ID.
  const flow = byBytes.flows[0];
  await page.click(`#flows tr[data-id="${flow.id}"] a.details`);
  await page.waitForSelector('#details h2', { timeout: 10000 });
  // The record as the server wrote it: integers past 2^53 (first_ns,
  // last_ns) kept exact as strings, as the page must show them.
  const rec = JSON.parse((await (await fetch(`${U}/api/v1/flows/${flow.id}`)).text()).replace(/:(\d{16,})([,}])/g, ':"$1"$2'));
  const shown = await page.$$eval('#details tr[data-field]', (trs) =>
    Object.fromEntries(trs.map((t) => [t.dataset.field, t.querySelector('td').textContent])),
  );
  const missing = Object.keys(rec).filter((k) => shown[k] !== String(rec[k]));
  check(missing.length === 0 && Object.keys(rec).length > 20, `details of flow ${flow.id}: all ${Object.keys(rec).length} fields of the API's record`, `differ: ${missing.join(', ')}`);
  const curl = await page.textContent('#curl');
  check(curl === `curl -OJ '${U}/api/v1/flows/${flow.id}/pcap'`, 'the curl command of the download', curl);
  check(page.url().includes(`flow=${flow.id}`), 'the open flow is in the URL');
  await page.screenshot({ path: path.join(shots, 'ui-flows.png') });

  // "download pcap" = flowvault extract --flow ID, byte for byte.
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }), page.click('#details a.pcap')]);
  const got = path.join(T, `ui-flow-${flow.id}.pcap`);
  await dl.saveAs(got);
  check(dl.suggestedFilename().startsWith(`flow-${flow.id}-`), `download named by the server (${dl.suggestedFilename()})`);
  const want = path.join(T, `cli-flow-${flow.id}.pcap`);
  execFileSync(FV, ['extract', '-s', STORE, '--flow', String(flow.id), '-w', want]);
  const gb = readFileSync(got);
  check(gb.length > 24 && gb.equals(readFileSync(want)), `downloaded pcap equals flowvault extract --flow ${flow.id} (${gb.length} bytes)`);
  const n = execFileSync('tshark', ['-r', got, '-T', 'fields', '-e', 'frame.number'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n').length;
  check(n === flow.packets, `tshark reads it: ${n} packets, the flow's ${flow.packets}`);

  // A bad filter: the API's message, and where.
  const BAD = 'tcp and host and port 80';
  await page.fill('#filter', BAD);
  await page.press('#filter', 'Enter');
  let err;
  try {
    const r = await fetch(`${U}/api/v1/flows?filter=${encodeURIComponent(BAD)}`);
    err = await r.json();
    await page.waitForSelector('#flows-error:not([hidden]) pre.caret', { timeout: 10000 });
    const text = await page.textContent('#flows-error');
    check(r.status === 400 && text.includes(err.detail), 'a bad filter shows the API\'s message', `${text} / ${err.detail}`);
    const caret = (await page.textContent('#flows-error pre.caret')).split('\n')[1];
    check(caret.indexOf('^') === err.at && caret.trim().length === err.length, `…and points at its position (${err.at}, ${err.length} long)`, JSON.stringify(caret));
    const sel = await page.$eval('#filter', (i) => [i.selectionStart, i.selectionEnd, i.getAttribute('aria-invalid')]);
    check(sel[0] === err.at && sel[1] === err.at + err.length && sel[2] === 'true', '…and selects it in the filter box', JSON.stringify(sel));
  } catch (e) {
    bad(`bad filter: ${e.message}`);
  }
  await page.screenshot({ path: path.join(shots, 'ui-bad-filter.png') });

  // ---- packet query ----
  await page.goto(`${U}/#/packets?range=all`);
  await page.fill('#bpf', 'tcp port');
  await page.click('form.query button[type=submit]');
  try {
    await page.waitForSelector('#packets-error:not([hidden])', { timeout: 10000 });
    check((await page.textContent('#packets-error')).includes('bad'), 'a bad BPF shows the API\'s error', await page.textContent('#packets-error'));
  } catch (e) {
    bad(`bad BPF: ${e.message}`);
  }
  const BPF = 'udp port 53';
  await page.fill('#bpf', BPF);
  const [pdl] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }), page.click('form.query button[type=submit]')]);
  const pgot = path.join(T, 'ui-packets.pcap');
  await pdl.saveAs(pgot);
  const pwant = path.join(T, 'cli-packets.pcap');
  execFileSync(FV, ['extract', '-s', STORE, '--bpf', BPF, '-w', pwant]);
  const pb = readFileSync(pgot);
  check(pb.length > 24 && pb.equals(readFileSync(pwant)), `packet query '${BPF}' downloads flowvault extract --bpf's file (${pb.length} bytes)`);
  check(page.url().includes('bpf=udp+port+53'), 'the BPF is in the URL');

  // ---- dashboard ----
  const st = await api('api/v1/status');
  await page.goto(`${U}/#/dashboard`);
  await page.waitForSelector('#health[data-loaded]', { timeout: 10000 });
  const fig = async (k) => (await page.textContent(`[data-figure=${k}]`)) || '';
  check((await fig('flows')) === st.flows.toLocaleString('en-US'), `dashboard: flows ${await fig('flows')}`);
  check((await fig('packets')) === st.packets.toLocaleString('en-US'), `dashboard: packets ${await fig('packets')}`);
  check((await fig('max_disk')) === '1.00 GiB', `dashboard: disk budget ${await fig('max_disk')}`);
  const used = st.segment_bytes + st.index_file_bytes;
  check((await fig('disk_used')).includes(`(${((100 * used) / st.max_disk).toFixed(1)} %)`), `dashboard: disk use ${await fig('disk_used')}`);
  check((await fig('drops')) === String((st.capture.kernel_drops || 0) + (st.capture.if_drops || 0) + (st.capture.nombuf || 0)), `dashboard: drops ${await fig('drops')}`);
  const workersShown = st.capture.workers.length ? await page.$$eval('#workers tbody tr', (t) => t.length) : (await page.isVisible('[data-figure=workers_none]')) ? 0 : -1;
  check(workersShown === st.capture.workers.length, `dashboard: drops per worker (${st.capture.workers.length} capture workers in this store)`);
  const pw = await fig('packets_window');
  check(pw.startsWith(new Date(Math.round((st.packets_from_ns || st.first_ns) / 1e6)).toISOString().slice(0, 19).replace('T', ' ')), `dashboard: packet retention ${pw}`);
  const fw = await fig('flows_window');
  check(fw.includes('→') && fw.includes(new Date(Math.round(st.flows_last_ns / 1e6)).toISOString().slice(0, 19).replace('T', ' ')), `dashboard: flow retention ${fw}`);

  if (STATS === '1') {
    try {
      await page.waitForSelector('#throughput .uplot canvas', { timeout: 10000 });
      const pts = await page.$eval('#throughput', (e) => Number(e.dataset.points));
      check(pts > 0, `throughput chart drawn (uPlot, ${pts} points)`);
      await page.waitForSelector('#top-hosts tbody tr', { timeout: 10000 });
      const top = await api('api/v1/stats/top?by=host&limit=10');
      const hosts = await page.$$eval('#top-hosts tbody tr', (trs) => trs.map((t) => t.dataset.key));
      const want = (top.top || top.entries || []).map((e) => e.host || e.key);
      check(hosts.length > 0 && JSON.stringify(hosts) === JSON.stringify(want), `top hosts: ${hosts.length}, the API's ranking`, `${hosts} / ${want}`);
    } catch (e) {
      bad(`stats: ${e.message}`);
    }
  } else {
    check(await page.isVisible('#stats-missing'), 'no stats routes on this server: the dashboard says so');
  }
  await page.screenshot({ path: path.join(shots, 'ui-dashboard.png'), fullPage: true });

  check(problems.length === 0, 'no console errors, page errors or requests outside the server', problems.join(' | '));
} catch (e) {
  bad(`unexpected: ${e.stack || e}`);
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
