// The web UI against a server started with --auth-token-file, in headless
// Chromium (playwright-core): the page asks for the token once (a
// prompt), then lists the flows and downloads a flow's pcap by its link
// (the cookie carries the token); a wrong token is asked again. Run by
// test_ui.sh as
//   node ui_token.mjs URL TOKEN FLOWVAULT STORE TMPDIR CHROMIUM
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [U, TOKEN, FV, STORE, T, CHROME] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../ui/package.json'));
const { chromium } = require('playwright-core');

let failures = 0;
const check = (cond, m) => {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${m}`);
  if (!cond) failures++;
};

const browser = await chromium.launch({
  executablePath: CHROME,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
try {
  const ctx = await browser.newContext({ acceptDownloads: true });
  const page = await ctx.newPage();
  const answers = ['wrong-token-wrong-token', TOKEN];
  let prompts = 0;
  page.on('dialog', (d) => {
    prompts++;
    d.accept(answers.shift() || '');
  });
  await page.goto(`${U}/`);
  await page.waitForSelector('#flows tbody tr[data-id]', { timeout: 20000 });
  const ids = await page.$$eval('#flows tbody tr[data-id]', (trs) => trs.map((t) => Number(t.dataset.id)));
  check(ids.length > 0, `with the token given at the prompt the explorer lists ${ids.length} flows`);
  check(prompts === 2, `a wrong token is asked again: ${prompts} prompts`);
  const id = ids[0];
  await page.click(`#flows tr[data-id="${id}"] a.details`);
  await page.waitForSelector('#details a.pcap', { timeout: 10000 });
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }), page.click('#details a.pcap')]);
  const got = path.join(T, `tok-${id}.pcap`);
  await dl.saveAs(got);
  const want = path.join(T, `tok-cli-${id}.pcap`);
  execFileSync(FV, ['extract', '-s', STORE, '--flow', String(id), '-w', want]);
  const gb = readFileSync(got);
  check(gb.length > 24 && gb.equals(readFileSync(want)), `a download by link carries the token: flow ${id}'s pcap equals extract's`);
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
