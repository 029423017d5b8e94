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
const brokenReplica = env('WALSTREAM_BROKEN_REPLICA');
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

/** The rest of the next stdin line, which must start with `prefix`. */
async function waitForPrefix(prefix) {
  const next = await stdinLines.next();
  check(!next.done && next.value.startsWith(prefix), `expected "${prefix}…" on stdin, got ${JSON.stringify(next.value)}`);
  return next.value.slice(prefix.length).trim();
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

  step(`the headline says "degraded" (warning style) while replica ${brokenReplica} cannot upload, naming it as the worst`);
  const headline = section.locator('.headline');
  await headline.locator('.state.warn', { hasText: /^degraded$/ }).waitFor();
  await section.locator('.headline', { hasText: `Last sync: never (replica ${brokenReplica})` }).waitFor();
  await section.locator('.problems li', { hasText: `replica ${brokenReplica} is failing` }).waitFor();

  step('"Last upload: N seconds ago" of the working replica ticks every second');
  const ago = `section[data-db="${db}"] .replica .ago`;
  await section.locator('.replica dd', { hasText: /\d+ seconds? ago, lag/ }).first().waitFor();
  const before = await section.locator('.replica .ago').first().textContent();
  await page.waitForFunction(
    ([sel, text]) => document.querySelector(sel)?.textContent !== text,
    [ago, before],
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

  step(`create backup "${backupName}" with labels`);
  await section.getByLabel('Name', { exact: true }).fill(backupName);
  await section.getByLabel('Description').fill('made by the browser test');
  await section.getByLabel('Labels', { exact: true }).fill('ticket=OPS-42, env=test');
  await section.getByRole('button', { name: 'Create backup' }).click();
  await page.locator('#notice').getByText(`Created backup "${backupName}"`).waitFor();
  const backupRows = section.locator('table.backups tbody tr');
  const id = await backupRows.filter({ hasText: backupName }).getAttribute('data-id');
  check(id, 'the backup row has no id');
  const row = section.locator(`table.backups tbody tr[data-id="${id}"]`);
  await row.locator('.chip', { hasText: 'ticket=OPS-42' }).waitFor();
  await row.locator('.chip', { hasText: 'env=test' }).waitFor();
  await section.locator(`.timeline .marker[data-id="${id}"]`).waitFor();
  await noPageErrors(page);

  step('pin: the row shows "pinned", Delete is disabled; unpin brings Pin and Delete back');
  await row.getByRole('button', { name: `Pin backup ${backupName}` }).click();
  await page.locator('#notice').getByText(`Pinned backup "${backupName}"`).waitFor();
  await row.locator('.chip.pin', { hasText: 'pinned' }).waitFor();
  check(await row.getByRole('button', { name: `Delete backup ${backupName}` }).isDisabled(), 'Delete is enabled on a pinned backup');
  await row.getByRole('button', { name: `Unpin backup ${backupName}` }).click();
  await page.locator('#notice').getByText(`Unpinned backup "${backupName}"`).waitFor();
  await row.getByRole('button', { name: `Pin backup ${backupName}` }).waitFor();
  check(await row.locator('.chip.pin').count() === 0, 'the pinned marker stayed after unpin');
  check(!(await row.getByRole('button', { name: `Delete backup ${backupName}` }).isDisabled()), 'Delete is disabled after unpin');
  await noPageErrors(page);

  step('filter the backups by label and kind (server-side filters)');
  const filterLabels = section.getByLabel('With labels');
  await filterLabels.fill('ticket=OPS-41');
  await section.getByRole('button', { name: 'Filter backups' }).click();
  await section.getByText('No backups match the filter.').waitFor();
  await filterLabels.fill('ticket=OPS-42 env=test');
  await section.getByRole('button', { name: 'Filter backups' }).click();
  await row.waitFor();
  await section.getByLabel('Kind').selectOption('pre-restore');
  await section.getByText('No backups match the filter.').waitFor();
  await section.getByLabel('Kind').selectOption('manual');
  await row.waitFor();
  await filterLabels.fill('');
  await section.getByLabel('Kind').selectOption('');
  await row.waitFor();
  await noPageErrors(page);

  step('download the backup (fetch with the token, saved from a blob)');
  const downloaded = await download(page, row.getByRole('link', { name: `Download backup ${backupName}` }));

  step('upload the downloaded file back as a backup (sent async, its job polled)');
  await section.getByLabel('Database file').setInputFiles(downloaded);
  await section.getByLabel('Upload as').fill('uploaded-copy');
  await section.getByRole('button', { name: 'Upload backup' }).click();
  await page.locator('#notice').getByText(`Uploaded backup "uploaded-copy" of ${db}`).waitFor();
  const uploadedRow = section.locator('tbody tr', { hasText: 'uploaded-copy' });
  await uploadedRow.waitFor();
  check((await uploadedRow.textContent()).includes('uploaded'), 'the uploaded backup does not show its kind');
  await noPageErrors(page);

  console.log(`backup-created ${id}`);
  await waitForLine('continue');

  step('compare the backup (A) with live (B), 5 rows a page: ids 1-5 removed, then 1000 added and 10 changed');
  await section.getByLabel('Compare A').selectOption(id);
  await section.getByLabel('with B').selectOption('live');
  await section.getByLabel('Rows per page').fill('5');
  await section.getByRole('button', { name: 'Compare', exact: true }).click();
  const counts = section.locator('.compare-tables tr[data-table="t"]');
  await counts.waitFor();
  const cells = await counts.locator('td').allTextContents();
  check(JSON.stringify(cells.slice(0, 6)) === JSON.stringify(['t', '20', '16', '1', '5', '1']), `compare counts of t: ${JSON.stringify(cells)}`);
  const changes = section.locator('.compare-rows tbody tr');
  await section.locator('.compare-result h4', { hasText: 'Changed rows 1–5' }).waitFor();
  check(await changes.count() === 5 && await section.locator('.compare-rows tr[data-change="removed"]').count() === 5, 'first page is not the 5 removed rows');
  await section.getByRole('button', { name: 'More changed rows' }).click();
  await section.locator('.compare-result h4', { hasText: 'Changed rows 6–7' }).waitFor();
  const changed = section.locator('.compare-rows tr[data-change="changed"]');
  check(await changed.locator('td').nth(2).textContent() === '10', 'the changed row is not id 10');
  const [was, now] = await changed.locator('td').evaluateAll((tds) => [tds[3].textContent, tds[4].textContent]);
  check(was.startsWith('id=10, v=row-10-') && now === 'id=10, v=changed-10', `changed row: A ${was}, B ${now}`);
  await section.locator('.compare-rows tr[data-change="added"]', { hasText: 'id=1000' }).waitFor();
  await noPageErrors(page);

  step('export table t of the live database as CSV (the compare filled the table list)');
  await section.getByLabel('Export from').selectOption('live');
  await section.getByLabel('Table', { exact: true }).fill('t');
  const csv = await downloadText(page, section.getByRole('button', { name: 'Download CSV' }));
  const lines = csv.split('\n');
  check(lines[0] === 'id,v' && lines.includes('10,changed-10') && !lines.some((l) => l.startsWith('5,'))
    && lines.some((l) => l.startsWith('1000,row-1000-')) && lines.length === 16 + 2, `exported CSV: ${JSON.stringify(lines.slice(0, 4))}… ${lines.length} lines`);

  const dialogs = [];
  let answer = true;
  page.on('dialog', (d) => { dialogs.push(d.message()); if (answer) d.accept(); else d.dismiss(); });

  step('restore the backup: accept its confirm, see the schema guard (user_version 7 → 0), accept that too');
  await row.getByRole('button', { name: `Restore backup ${backupName}` }).click();
  await page.locator('#notice').getByText(`Restored ${db} from backup ${id}`).waitFor();
  check(dialogs.length === 2 && dialogs[0].includes(backupName), `confirm dialogs: ${JSON.stringify(dialogs)}`);
  check(dialogs[1].includes('user_version: 7 now → 0 after the restore'), `schema guard dialog: ${JSON.stringify(dialogs[1])}`);
  await backupRows.filter({ hasText: 'pre-restore' }).first().waitFor();
  await section.getByRole('button', { name: 'Undo last restore' }).waitFor();
  await noPageErrors(page);

  console.log('backup-restored');
  await waitForLine('continue');

  step(`restore to the oldest point ${oldestTime}, accepting the confirm dialog`);
  await oldest.click();
  await page.locator('#notice').getByText(`Restored ${db} from replica`).waitFor();
  check(dialogs.length === 3 && dialogs[2].includes(oldestTime), `confirm dialogs: ${JSON.stringify(dialogs)}`);
  await noPageErrors(page);

  console.log('point-restored');
  const picked = await waitForPrefix('pick ');

  step('a time before the restorable window is refused on the page, without asking or calling restore');
  const picker = section.getByLabel('Restore to a time (UTC)');
  await picker.fill('2001-02-03T04:05:06.007');
  await section.getByRole('button', { name: 'Restore to this time' }).click();
  await page.locator('#errors').getByText('is outside the restorable window of replica').waitFor();
  check(dialogs.length === 3, `a refused time asked: ${JSON.stringify(dialogs)}`);
  await page.locator('#errors').getByRole('button', { name: 'Dismiss error' }).click();
  await noPageErrors(page);

  step(`restore to ${picked} with the date-time picker`);
  await picker.fill(pickerValue(picked));
  await section.getByRole('button', { name: 'Restore to this time' }).click();
  const pickedIso = `${picked.slice(0, 23)}Z`;
  await page.locator('#notice').getByText(`Restored ${db} from replica`).filter({ hasText: pickedIso }).waitFor();
  check(dialogs.length === 4 && dialogs[3].includes(pickedIso), `confirm dialogs: ${JSON.stringify(dialogs)}`);
  await noPageErrors(page);

  console.log('time-restored');
  await waitForLine('continue');

  step('undo the last restore: its pre-restore safety backup comes back');
  await section.getByRole('button', { name: 'Undo last restore' }).click();
  await page.locator('#notice').getByText(`Undone: Restored ${db} from backup`).waitFor();
  check(dialogs.length === 5 && dialogs[4].startsWith(`Undo the last restore of ${db}`), `confirm dialogs: ${JSON.stringify(dialogs)}`);
  await section.getByRole('button', { name: 'Undo last restore' }).waitFor({ state: 'detached' });
  await noPageErrors(page);

  console.log('undone');
  await waitForLine('continue');

  step('expire: the dry run lists every backup with its verdict; nothing would go');
  await section.getByRole('button', { name: 'Expire old backups' }).click();
  const verdicts = section.locator('table.verdicts tbody tr');
  await verdicts.first().waitFor();
  check(await verdicts.count() === await backupRows.count(), 'the dry run does not list every backup');
  await verdicts.filter({ hasText: backupName }).filter({ hasText: 'keep-last 1' }).waitFor();
  await section.getByText(/Dry run: nothing would expire/).waitFor();
  check(await section.getByRole('button', { name: 'Expire 0 backups' }).isDisabled(), 'the expire button is enabled with nothing to expire');
  check(await section.locator('.timeline .marker').count() === await backupRows.count(), 'the timeline does not mark every backup');
  await noPageErrors(page);
  const shot = join(out, 'admin-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  await section.getByRole('button', { name: 'Close' }).click();

  step('download the latest state from the replica');
  await download(page, section.getByRole('link', { name: /latest state of/ }));

  step('delete: a dismissed confirm keeps the backup, an accepted one deletes it');
  answer = false;
  await row.getByRole('button', { name: `Delete backup ${backupName}` }).click();
  await waitUntil(() => dialogs.length === 6, 'the delete confirm dialog');
  check(dialogs.length === 6 && dialogs[5].includes(backupName), `confirm dialogs: ${JSON.stringify(dialogs)}`);
  check(await row.count() === 1, 'a dismissed delete removed the backup');
  answer = true;
  await row.getByRole('button', { name: `Delete backup ${backupName}` }).click();
  await page.locator('#notice').getByText(`Deleted backup "${backupName}"`).waitFor();
  await row.waitFor({ state: 'detached' });
  await noPageErrors(page);
  console.log(`screenshot ${shot}`);
}

/**
 * The `datetime-local` value of an RFC 3339 UTC time, to the millisecond, in the normalized form
 * the browser keeps (no trailing zeros of the fraction, no `:00` seconds without a fraction).
 */
function pickerValue(rfc3339) {
  let v = rfc3339.slice(0, 23).replace(/0+$/, '').replace(/\.$/, '');
  if (v.length === 19 && v.endsWith(':00')) v = v.slice(0, 16);
  return v;
}

/** Clicks a control that downloads a text file and answers the file's content. */
async function downloadText(page, control) {
  const [file] = await Promise.all([page.waitForEvent('download'), control.click()]);
  const saved = join(out, file.suggestedFilename());
  await file.saveAs(saved);
  console.log(`downloaded ${saved} ${statSync(saved).size}`);
  return readFileSync(saved, 'utf8');
}

/** Clicks a download link and checks that a SQLite database arrives. */
async function download(page, link) {
  const [file] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const saved = join(out, file.suggestedFilename());
  await file.saveAs(saved);
  const head = readFileSync(saved).subarray(0, 16).toString('latin1');
  check(head === 'SQLite format 3\0', `the downloaded ${saved} is not a SQLite database`);
  console.log(`downloaded ${saved} ${statSync(saved).size}`);
  return saved;
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
