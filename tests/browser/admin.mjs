// tests/browser/admin.mjs — drives walstream's admin page (GET /) in headless Chromium with
// playwright-core; run by tests/admin_page.rs, which starts `walstream replicate` and checks the
// database afterwards.
//
// Environment: WALSTREAM_URL (base URL), WALSTREAM_TOKEN, WALSTREAM_DB (database id),
// WALSTREAM_BACKUP_NAME, WALSTREAM_OUT (a directory for the screenshot and the download),
// WALSTREAM_CHROMIUM (default /usr/bin/chromium).
// Protocol with the Rust test (which changes and checks the database meanwhile): prints
// `backup-created <id>` once the backup is listed and `backup-restored` after restoring it, each
// time waiting for a `continue` line on stdin; then restores the oldest restore point.
// Prints `screenshot <path>` at the end; exits 0 only if every step passed.
//
// Must stay true: fails (exit 1, message and a failure screenshot) on any missing element, any
// uncaught page error, any CSP violation or any API error shown by the page; never skips.
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
};
const base = env('WALSTREAM_URL');
const token = env('WALSTREAM_TOKEN');
const db = env('WALSTREAM_DB');
const backupName = env('WALSTREAM_BACKUP_NAME');
const out = env('WALSTREAM_OUT');
const executablePath = env('WALSTREAM_CHROMIUM', '/usr/bin/chromium');
const STEP_MS = 60_000;

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const problems = [];
const step = (text) => console.log(`step: ${text}`);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Waits until the page's error area is empty (an API error it shows fails the test). */
async function noPageErrors(page) {
  const text = await page.locator('#errors').innerText();
  check(text.trim() === '', `the page shows an error: ${text}`);
}

async function waitUntil(condition, what) {
  const end = Date.now() + STEP_MS;
  while (!condition()) {
    check(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitForLine(expected) {
  const next = await stdinLines.next();
  check(!next.done && next.value.trim() === expected, `expected "${expected}" on stdin, got ${JSON.stringify(next.value)}`);
}

async function run(page) {
  step(`open ${base}/`);
  const resp = await page.goto(`${base}/`);
  check(resp.ok(), `GET / answered ${resp.status()}`);
  check((resp.headers()['content-security-policy'] || '').includes("default-src 'self'"), 'GET / has no CSP');

  step('without a token the protected status read fails visibly');
  await page.locator('#errors').getByText(/401/).waitFor();

  step('enter the token');
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Save token' }).click();
  await page.getByText('Token saved for this tab.').waitFor();
  const section = page.locator(`section[data-db="${db}"]`);
  await section.getByRole('heading', { name: db, exact: true }).waitFor();
  await page.waitForFunction(() => document.getElementById('errors').textContent.trim() === '');

  step('"Last sync: N seconds ago" ticks every second');
  const ago = section.locator('.headline .ago');
  await section.locator('.headline', { hasText: /Last sync: \d+ seconds? ago/ }).waitFor();
  const before = await ago.textContent();
  await page.waitForFunction(
    ([sel, text]) => document.querySelector(sel)?.textContent !== text,
    [`section[data-db="${db}"] .headline .ago`, before],
    { timeout: 10_000 },
  );
  await section.locator('code', { hasText: 'file://' }).first().waitFor();

  step('the search box filters databases on the server; clearing it brings them back');
  await page.getByLabel('Search databases').fill('no-such-database');
  await page.getByText('No databases match.').waitFor();
  check(await section.count() === 0, 'a non-matching search still shows the database');
  check((await page.locator('#range').textContent()) === 'No databases', 'range text after an empty search');
  await page.getByLabel('Search databases').fill(db.slice(0, 3).toUpperCase());
  await section.getByRole('heading', { name: db, exact: true }).waitFor();
  await page.locator('#range', { hasText: 'Databases 1–1 of 1' }).waitFor();
  check(await page.getByRole('button', { name: 'Next page' }).isDisabled(), 'next page enabled on the only page');
  await page.getByLabel('Search databases').fill('');
  await section.locator('code', { hasText: 'file://' }).first().waitFor();

  step('view restore points (kept open: they predate every change the test makes)');
  await section.getByRole('button', { name: 'View restore points' }).click();
  const points = section.getByRole('button', { name: 'Restore to this point' });
  await points.first().waitFor();
  const oldest = points.last();
  const oldestTime = (await oldest.getAttribute('aria-label')).split(' at ').pop();

  step(`create backup "${backupName}"`);
  await section.getByLabel('Name').fill(backupName);
  await section.getByLabel('Description').fill('made by the browser test');
  await section.getByRole('button', { name: 'Create backup' }).click();
  await page.locator('#notice').getByText(`Created backup "${backupName}"`).waitFor();
  const id = await section.locator('tbody tr', { hasText: backupName }).getAttribute('data-id');
  check(id, 'the backup row has no id');
  const row = section.locator(`tbody tr[data-id="${id}"]`);
  await noPageErrors(page);

  step('download the backup (fetch with the token, saved from a blob)');
  await download(page, row.getByRole('link', { name: `Download backup ${backupName}` }));

  console.log(`backup-created ${id}`);
  await waitForLine('continue');

  const dialogs = [];
  let answer = true;
  page.on('dialog', (d) => { dialogs.push(d.message()); if (answer) d.accept(); else d.dismiss(); });

  step('restore the backup: accept its confirm, see the schema guard (user_version 7 → 0), accept that too');
  await row.getByRole('button', { name: `Restore backup ${backupName}` }).click();
  await page.locator('#notice').getByText(`Restored ${db} from backup ${id}`).waitFor();
  check(dialogs.length === 2 && dialogs[0].includes(backupName), `confirm dialogs: ${JSON.stringify(dialogs)}`);
  check(dialogs[1].includes('user_version: 7 now → 0 after the restore'), `schema guard dialog: ${JSON.stringify(dialogs[1])}`);
  await section.locator('tbody tr', { hasText: 'pre-restore' }).first().waitFor();
  await noPageErrors(page);

  console.log('backup-restored');
  await waitForLine('continue');

  step(`restore to the oldest point ${oldestTime}, accepting the confirm dialog`);
  await oldest.click();
  await page.locator('#notice').getByText(`Restored ${db} from replica`).waitFor();
  check(dialogs.length === 3 && dialogs[2].includes(oldestTime), `confirm dialogs: ${JSON.stringify(dialogs)}`);
  await noPageErrors(page);
  const shot = join(out, 'admin-page.png');
  await page.screenshot({ path: shot, fullPage: true });

  step('download the latest state from the replica');
  await download(page, section.getByRole('link', { name: /latest state of/ }));

  step('delete: a dismissed confirm keeps the backup, an accepted one deletes it');
  answer = false;
  await row.getByRole('button', { name: `Delete backup ${backupName}` }).click();
  await waitUntil(() => dialogs.length === 4, 'the delete confirm dialog');
  check(dialogs.length === 4 && dialogs[3].includes(backupName), `confirm dialogs: ${JSON.stringify(dialogs)}`);
  check(await row.count() === 1, 'a dismissed delete removed the backup');
  answer = true;
  await row.getByRole('button', { name: `Delete backup ${backupName}` }).click();
  await page.locator('#notice').getByText(`Deleted backup "${backupName}"`).waitFor();
  await row.waitFor({ state: 'detached' });
  await noPageErrors(page);
  console.log(`screenshot ${shot}`);
}

/** Clicks a download link and checks that a SQLite database arrives. */
async function download(page, link) {
  const [file] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const saved = join(out, file.suggestedFilename());
  await file.saveAs(saved);
  const head = readFileSync(saved).subarray(0, 16).toString('latin1');
  check(head === 'SQLite format 3\0', `the downloaded ${saved} is not a SQLite database`);
  console.log(`downloaded ${saved} ${statSync(saved).size}`);
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), 'walstream-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1200, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(STEP_MS);
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (e) => problems.push(`uncaught page error: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    console.log(`console.${m.type()}: ${text}`);
    // Failed API calls are logged by Chromium and shown by the page; anything else is a bug.
    if (m.type() === 'error' && !text.startsWith('Failed to load resource')) problems.push(`console error: ${text}`);
  });
  let status = 0;
  try {
    await run(page);
    check(problems.length === 0, problems.join('\n'));
    console.log('admin page test passed');
  } catch (e) {
    status = 1;
    console.error(`admin page test FAILED: ${e.stack || e}`);
    if (problems.length) console.error(problems.join('\n'));
    const shot = join(out, 'admin-page-failure.png');
    await page.screenshot({ path: shot, fullPage: true }).then(
      () => console.error(`failure screenshot ${shot}`),
      (err) => console.error(`no failure screenshot: ${err.message}`));
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  process.exit(status);
}

main().catch((e) => {
  console.error(`admin page test FAILED: ${e.stack || e}`);
  process.exit(1);
});
