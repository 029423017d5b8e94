// walstream admin page script, served as /assets/app.js by src/server/page.rs.
// Owns: showing one page of databases (GET /api/v1/status?limit&offset&q&state: the search box,
// state filter and paging work server-side, so 10,000 databases cost one page) with a headline
// that judges every replica (replicating / degraded / failing, last sync and lag of the worst
// replica), their continuous backup (…/restore-points, loaded only when a database's restore
// points are opened), a timeline of the restorable window and the backups, and the backups
// (…/backups, filtered by kind and labels) with the admin actions: create (with labels), download,
// restore, pin/unpin, delete and expire (dry run first) backups, compare two backups or one with
// the live database (…/backups/compare, paged), export a table as CSV (…/export),
// point-in-time restore from the replica (listed points, or any time of the restorable window
// with a date-time picker), undo of the last restore (its pre-restore safety backup), download
// of the replica's latest state.
// Must stay true: every API call sends the saved bearer token, downloads too (always fetched, never
// a plain link: the server refuses database content without the token); every failed call
// is shown in the error area, never swallowed; restores, deletes and expires ask for confirmation
// first (a restore that would change the schema asks again, showing the differences; a picked
// time is checked against the replica's window of the moment before anything is asked);
// data reaches the page through textContent only (never innerHTML); no request leaves this origin;
// positions are set through the CSSOM (element.style), never a style attribute (CSP).
'use strict';

const API = '/api/v1';
const TOKEN_KEY = 'walstream.token';
const STATUS_EVERY_MS = 5000;
const POINTS_SHOWN = 25;
const PAGE_SIZE = 20;
const SEARCH_DELAY_MS = 300;

const view = {
  status: null, fetchedAt: 0, sections: new Map(), loading: false, again: false,
  query: { q: '', state: '', offset: 0 },
};
const errors = new Map();

// ---------------------------------------------------------------------------------------------
// DOM helpers

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const $ = (id) => document.getElementById(id);

function showError(key, message) {
  errors.set(key, message);
  renderErrors();
}

function clearError(key) {
  if (errors.delete(key)) renderErrors();
}

function renderErrors() {
  $('errors').replaceChildren(...[...errors].map(([key, message]) => el('p', { class: 'error' },
    el('span', { text: message }), ' ',
    el('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss error', onclick: () => clearError(key) }, 'Dismiss'))));
}

function notify(message) {
  $('notice').replaceChildren(el('p', { text: `${new Date().toLocaleTimeString()}: ${message}` }));
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Milliseconds since the epoch of an RFC 3339 time (fractions past milliseconds dropped). */
function parseTime(text) {
  return text ? Date.parse(text.replace(/(\.\d{3})\d+/, '$1')) : NaN;
}

/** "2026-11-22 06:34:37.123 UTC": unambiguous, and close restore points stay apart. */
function formatTime(text) {
  const ms = parseTime(text);
  return Number.isNaN(ms) ? '—' : new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

function formatAgo(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return `${s} second${s === 1 ? '' : 's'} ago`;
  if (s < 7200) return `${Math.floor(s / 60)} minutes ago`;
  if (s < 172800) return `${Math.floor(s / 3600)} hours ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

function formatBytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

function formatPosition(p) {
  return p ? `${p.generation}/${p.index.toString(16).padStart(8, '0')}:${p.offset}` : '—';
}

/** A span that tick() rewrites every second as "N seconds ago" from the server's clock. */
function agoSpan(time) {
  const span = el('span', { class: 'ago', 'data-time': time || '', title: time || '' });
  updateAgo(span);
  return span;
}

function updateAgo(span) {
  const at = parseTime(span.dataset.time);
  const now = parseTime(view.status && view.status.time) + (Date.now() - view.fetchedAt);
  span.textContent = Number.isNaN(at) || Number.isNaN(now) ? 'never' : formatAgo((now - at) / 1000);
}

function tick() {
  document.querySelectorAll('.ago').forEach(updateAgo);
}

// ---------------------------------------------------------------------------------------------
// API

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

const dbPath = (db) => `${API}/databases/${encodeURIComponent(db)}`;

/** The error document of a failed answer: `{error, …}`, or the body as `error` if not JSON. */
async function errorDoc(resp) {
  const text = await resp.text();
  try {
    const doc = JSON.parse(text);
    if (doc && typeof doc.error === 'string') return doc;
  } catch (notJson) {
    // Not a JSON error document: show the body as it is.
  }
  return { error: text || '(empty answer)' };
}

/** fetch() with the token; resolves to the response when it is 2xx, else throws its message. */
async function call(method, path, body, raw) {
  const init = { method, headers: {} };
  if (token()) init.headers.Authorization = `Bearer ${token()}`;
  if (raw) {
    init.headers['Content-Type'] = raw.type;
    init.body = raw.body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new Error(`${method} ${path}: ${e.message}`);
  }
  if (resp.ok) return resp;
  const hint = resp.status === 401 || resp.status === 403 ? ' — check the API token above' : '';
  const doc = await errorDoc(resp);
  const err = new Error(`${method} ${path}: ${resp.status} ${doc.error}${hint}`);
  err.doc = doc;
  throw err;
}

async function callJson(method, path, body) {
  const resp = await call(method, path, body);
  return resp.status === 204 ? null : resp.json();
}

/** Runs an action with its button disabled; its error goes to the error area under `key`. */
async function act(button, key, action) {
  if (button) button.disabled = true;
  try {
    await action();
    clearError(key);
  } catch (e) {
    showError(key, e.message);
  } finally {
    if (button) button.disabled = false;
  }
}

/**
 * A download link. Downloads always need the token (the server refuses database content
 * without it), and a plain link cannot send a header: the file is fetched with the header and
 * saved from a blob; without a saved token the refusal is shown in the error area.
 */
function downloadLink(href, label, ariaLabel) {
  return el('a', {
    href, download: '', class: 'button', 'aria-label': ariaLabel,
    onclick: (event) => {
      event.preventDefault();
      act(null, `download ${href}`, () => saveBlob(href));
    },
  }, label);
}

async function saveBlob(href) {
  notify(`Downloading ${href}…`);
  const resp = await call('GET', href);
  const disposition = resp.headers.get('Content-Disposition') || '';
  const match = /filename="([^"]+)"/.exec(disposition);
  const name = match ? match[1] : href.split('/').pop();
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  notify(`Downloaded ${name} (${formatBytes(blob.size)})`);
}

// ---------------------------------------------------------------------------------------------
// Status and the continuous-backup panel

/** The status request of the current page, search and state filter. */
function statusPath() {
  const { q, state, offset } = view.query;
  let path = `${API}/status?limit=${PAGE_SIZE}&offset=${offset}`;
  if (q) path += `&q=${encodeURIComponent(q)}`;
  if (state) path += `&state=${encodeURIComponent(state)}`;
  return path;
}

async function refreshStatus() {
  if (view.loading) { view.again = true; return; }
  view.loading = true;
  try {
    const doc = await callJson('GET', statusPath());
    view.status = doc;
    view.fetchedAt = Date.now();
    clearError('status');
    renderPaging(doc.page || { total: (doc.databases || []).length, offset: 0, next: null });
    renderDatabases(doc.databases || []);
  } catch (e) {
    showError('status', e.message);
  } finally {
    view.loading = false;
    if (view.again) { view.again = false; refreshStatus(); }
  }
}

function renderPaging(page) {
  const shown = view.status && view.status.databases ? view.status.databases.length : 0;
  $('range').textContent = page.total === 0 ? 'No databases'
    : `Databases ${page.offset + 1}–${page.offset + shown} of ${page.total}`;
  $('prev').disabled = page.offset === 0;
  $('next').disabled = !page.next;
}

/** Moves to another page or filter and reloads at once. */
function setQuery(change) {
  Object.assign(view.query, change);
  refreshStatus();
}

function renderDatabases(dbs) {
  const main = $('databases');
  main.setAttribute('aria-busy', 'false');
  const seen = new Set();
  for (const db of dbs) {
    seen.add(db.name);
    let section = view.sections.get(db.name);
    if (!section) {
      section = createSection(db);
      view.sections.set(db.name, section);
      loadBackups(section);
    }
    renderPanel(section, db);
  }
  for (const [name, section] of view.sections) {
    if (!seen.has(name)) { section.root.remove(); view.sections.delete(name); }
  }
  if (dbs.length === 0) {
    const filtered = view.query.q || view.query.state || view.query.offset;
    main.replaceChildren(el('p', { text: filtered ? 'No databases match.' : 'No databases are configured.' }));
    return;
  }
  // Reorder only when needed: moving nodes would drop the focus of a form being filled in.
  const wanted = dbs.map((db) => view.sections.get(db.name).root);
  const current = [...main.children];
  if (wanted.length !== current.length || wanted.some((node, i) => node !== current[i])) {
    main.replaceChildren(...wanted);
  }
}

/**
 * The headline state of a database from all of its replicas: `replicating` only when every
 * replica has uploaded and none is failing; `degraded` when some replica fails or has never
 * uploaded while another works; `failing` when none works and one fails.
 */
function databaseHealth(db) {
  if (!db.attached) return { state: 'waiting for the database file', cls: 'bad', problems: [] };
  if (db.last_error) return { state: `sync failing: ${db.last_error}`, cls: 'bad', problems: [] };
  const replicas = db.replicas || [];
  const problems = [];
  let healthy = 0;
  let failing = 0;
  for (const r of replicas) {
    if (r.failure_streak > 0) {
      failing += 1;
      const why = r.last_error ? `: ${r.last_error.message}` : '';
      problems.push(`replica ${r.name} is failing (${r.failure_streak} failed rounds)${why}`);
    } else if (!r.last_sync) {
      problems.push(`replica ${r.name} has never completed an upload`);
    } else {
      healthy += 1;
    }
  }
  if (replicas.length === 0) return { state: 'no replicas', cls: 'warn', problems };
  if (healthy === replicas.length) return { state: 'replicating', cls: 'good', problems };
  if (healthy > 0) return { state: 'degraded', cls: 'warn', problems };
  if (failing > 0) return { state: 'failing', cls: 'bad', problems };
  return { state: 'waiting for the first upload', cls: 'warn', problems };
}

/** The replica furthest behind: one that never uploaded, else the oldest upload, then the lag. */
function worstReplica(replicas) {
  const age = (r) => (r.last_sync ? parseTime(r.last_sync) : -Infinity);
  return (replicas || []).slice().sort((a, b) => age(a) - age(b)
    || Number(b.lag_seconds || 0) - Number(a.lag_seconds || 0))[0];
}

function renderPanel(section, db) {
  section.db = db;
  const health = databaseHealth(db);
  const worst = worstReplica(db.replicas);
  section.headline.replaceChildren(
    el('span', { class: `state ${health.cls}` }, health.state), ' · ',
    'Last sync: ', agoSpan(worst ? worst.last_sync : db.last_sync),
    worst ? ` (replica ${worst.name}), lag ${Number(worst.lag_seconds || 0).toFixed(1)} s` : '');
  section.problems.replaceChildren(...health.problems.map((p) => el('li', { class: health.cls, text: p })));
  section.summary.replaceChildren(...[
    el('dt', {}, 'Size'), el('dd', {}, `${formatBytes(db.size)} (WAL ${formatBytes(db.wal_size)})`),
    el('dt', {}, 'Position'), el('dd', {}, el('code', {}, formatPosition(db.position))),
    backupsSummary(db.backups), drillSummary(db.drill),
  ].flat().filter((node) => node));
  section.replicas.replaceChildren(...(db.replicas || []).map(renderReplica));
  renderWindow(section);
  renderTimeline(section);
}

/** Newest backup per kind and the backups volume's free space (`db.backups` of the status). */
function backupsSummary(b) {
  if (!b) return null;
  const kinds = ['manual', 'scheduled', 'uploaded', 'pre-restore']
    .filter((k) => b[k] && b[k].count > 0)
    .map((k) => `${k}: ${b[k].count}, newest ${formatTime(b[k].newest)}`);
  const volume = b.volume
    ? `; volume ${formatBytes(b.volume.free_bytes)} free of ${formatBytes(b.volume.total_bytes)}` : '';
  return [el('dt', {}, 'Backups'), el('dd', { class: 'backups-summary' }, `${kinds.join(' · ') || 'none'}${volume}`)];
}

/** The last restore drill (`db.drill`): its result and how long each part took. */
function drillSummary(d) {
  if (!d) return null;
  const part = (name, p) => (p ? `${name} ${p.ok ? 'ok' : `FAILED (${p.error})`} in ${p.duration_seconds.toFixed(2)} s` : null);
  const parts = [part('replica', d.replica), part('backup', d.backup)].filter((x) => x);
  return [el('dt', {}, 'Restore drill'),
    el('dd', { class: d.ok ? 'good' : 'bad' }, `${formatTime(d.finished)}: ${parts.join(', ') || 'nothing to restore'}`)];
}

function renderReplica(r) {
  const snapshot = r.latest_snapshot
    ? `${formatTime(r.latest_snapshot.time)} (generation ${r.latest_snapshot.generation}, index ${r.latest_snapshot.index})`
    : 'none yet';
  const range = r.oldest_restore_point
    ? `${formatTime(r.oldest_restore_point)} → ${formatTime(r.last_sync)}` : 'none yet';
  const failing = r.failure_streak > 0 && r.last_error;
  return el('div', { class: 'replica' },
    el('h4', {}, `Replica ${r.name} (${r.type})`),
    el('dl', {},
      el('dt', {}, 'URL'), el('dd', {}, el('code', {}, r.url)),
      r.txid ? [el('dt', {}, 'TXID'), el('dd', {}, el('code', {}, r.txid), ' (Litestream v0.5 layout)')] : null,
      el('dt', {}, 'Last upload'), el('dd', {}, agoSpan(r.last_sync), `, lag ${Number(r.lag_seconds || 0).toFixed(1)} s`),
      el('dt', {}, 'Latest snapshot'), el('dd', {}, snapshot),
      el('dt', {}, 'Restore points'), el('dd', {}, range),
      failing ? [el('dt', {}, 'Error'), el('dd', { class: 'bad' }, `${r.last_error.message} (${r.failure_streak} failed rounds)`)] : null));
}

const BACKUP_COLUMNS = ['Name', 'Created', 'Size', 'Kind', 'Labels', 'Pinned', 'Actions'];

function createSection(db) {
  const name = db.name;
  const titleId = `db-${view.sections.size}`;
  const s = { name, db, backupList: [], undo: null, compare: null };
  s.headline = el('p', { class: 'headline' });
  s.problems = el('ul', { class: 'problems' });
  s.summary = el('dl', { class: 'summary' });
  s.replicas = el('div', { class: 'replicas' });
  s.points = el('div', { class: 'points', hidden: true });
  s.pointsButton = el('button', { type: 'button', 'aria-expanded': 'false', onclick: () => togglePoints(s) }, 'View restore points');
  s.undoBox = el('div', { class: 'undo', hidden: true });
  s.timeline = el('div', { class: 'timeline' });
  s.backups = el('tbody', {}, el('tr', {}, el('td', { colspan: BACKUP_COLUMNS.length, text: 'Loading backups…' })));
  s.expire = el('div', { class: 'expire', hidden: true });
  s.root = el('section', { class: 'db', 'aria-labelledby': titleId, 'data-db': name },
    el('h2', { id: titleId }, name), el('p', { class: 'muted', text: db.path }),
    s.undoBox,
    el('div', { class: 'panel' },
      el('h3', {}, 'Continuous backup'), s.headline, s.problems, s.summary, s.replicas,
      el('div', { class: 'actions' }, s.pointsButton,
        downloadLink(`${dbPath(name)}/replica/latest.db`, 'Download latest from replica', `Download the latest state of ${name} from the replica`)),
      createTimeForm(s),
      s.points),
    el('div', { class: 'panel' }, el('h3', {}, 'Timeline'), s.timeline),
    el('div', { class: 'panel' },
      el('h3', {}, 'Backups'), createForm(s), uploadForm(s), createBackupFilter(s), s.expire,
      el('table', { class: 'backups' },
        el('caption', { class: 'visually-hidden' }, `Backups of ${name}`),
        el('thead', {}, el('tr', {}, BACKUP_COLUMNS.map((h) => el('th', { scope: 'col' }, h)))),
        s.backups)),
    el('div', { class: 'panel' }, el('h3', {}, 'Compare and export'), createCompare(s), createExport(s)));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Restore points

function togglePoints(s) {
  const open = s.points.hidden;
  s.points.hidden = !open;
  s.pointsButton.setAttribute('aria-expanded', String(open));
  s.pointsButton.textContent = open ? 'Hide restore points' : 'View restore points';
  if (open) {
    s.points.replaceChildren(el('p', { class: 'muted', text: 'Loading restore points…' }));
    act(s.pointsButton, `points ${s.name}`, async () => {
      const doc = await callJson('GET', `${dbPath(s.name)}/restore-points`);
      s.points.replaceChildren(...(doc.replicas || []).map((r) => renderPointsReplica(s, r)));
    });
  }
}

/** Restorable times of a generation: its snapshots, WAL index ends and newest object. */
function generationPoints(g) {
  if (!g.restorable_from) return [];
  const from = parseTime(g.restorable_from);
  const times = new Set([g.restorable_to]);
  (g.snapshots || []).forEach((snap) => times.add(snap.created_at));
  (g.wal || []).forEach((w) => times.add(w.last_created_at));
  return [...times].filter((t) => t && parseTime(t) >= from).sort((a, b) => parseTime(b) - parseTime(a));
}

function renderPointsReplica(s, r) {
  const gens = (r.generations || []).slice().sort((a, b) => parseTime(b.updated_at) - parseTime(a.updated_at));
  return el('div', { class: 'replica' },
    el('h4', {}, `Replica ${r.name} (${r.type}) `, el('code', {}, r.url)),
    el('p', { class: 'muted' }, 'Listed ', agoSpan(r.refreshed_at)),
    r.error ? el('p', { class: 'bad', text: `Listing failed: ${r.error.message}` }) : null,
    gens.length === 0 ? el('p', { text: 'No generations in this replica.' }) : null,
    gens.map((g) => {
      const points = generationPoints(g);
      return el('div', { class: 'generation' },
        el('p', {}, `Generation ${g.generation}: restorable from ${formatTime(g.restorable_from)} to ${formatTime(g.restorable_to)}`),
        el('ul', {}, points.slice(0, POINTS_SHOWN).map((t) => el('li', {},
          el('time', { datetime: t, title: t }, formatTime(t)), ' ',
          el('button', { type: 'button', 'aria-label': `Restore to this point: ${s.name} at ${t}`, onclick: (e) => restoreToPoint(s, t, e.currentTarget) }, 'Restore to this point')))),
        points.length > POINTS_SHOWN
          ? el('p', { class: 'muted', text: `${points.length - POINTS_SHOWN} older points not shown (walstream restore -timestamp reaches them).` }) : null);
    }));
}

function restoreToPoint(s, timestamp, button) {
  act(button, `restore ${s.name}`, () => restoreReplicaAt(s, timestamp));
}

/** Asks, then restores the live database to the first replica's state at `timestamp`. */
async function restoreReplicaAt(s, timestamp) {
  const question = `Restore ${s.name} to ${timestamp}?\n\nThe live database is replaced by the replica's state at that time. A safety backup of the current database is taken first.`;
  if (!window.confirm(question)) return;
  notify(`Restoring ${s.name} to ${timestamp}…`);
  const result = await restoreGuarded(s, `${dbPath(s.name)}/restore`, { timestamp });
  if (result) await restored(s, result);
}

/** After a live restore: says what happened, offers its undo and reloads. */
async function restored(s, result, undone) {
  notify(undone ? `Undone: ${describeRestore(result)}` : describeRestore(result));
  s.undo = undone ? null : result;
  renderUndo(s);
  await Promise.all([loadBackups(s), refreshStatus()]);
}

/** The restorable window of the first replica (the one live restores use), or null. */
function restoreWindow(db) {
  const r = db && (db.replicas || [])[0];
  if (!r || !r.oldest_restore_point || !r.last_sync) return null;
  return { replica: r.name, from: r.oldest_restore_point, to: r.last_sync };
}

/** The `datetime-local` value (UTC, milliseconds) of an RFC 3339 time. */
function pickerValue(text) {
  const ms = parseTime(text);
  return Number.isNaN(ms) ? '' : new Date(ms).toISOString().slice(0, 23);
}

/** Point-in-time restore with a date-time picker, anywhere in the restorable window. */
function createTimeForm(s) {
  s.timeInput = el('input', { type: 'datetime-local', step: '0.001', name: 'timestamp', required: true });
  s.windowText = el('span', { class: 'muted' });
  // novalidate: the window is checked against a fresh status on submit, not the shown min/max.
  const form = el('form', { class: 'pitr', autocomplete: 'off', novalidate: true },
    el('label', {}, 'Restore to a time (UTC) ', s.timeInput),
    el('button', { type: 'submit' }, 'Restore to this time'), s.windowText);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    act(form.querySelector('button'), `restore ${s.name}`, async () => {
      const value = s.timeInput.value;
      const ms = Date.parse(`${value}Z`);
      if (!value || Number.isNaN(ms)) throw new Error(`Pick a date and time to restore ${s.name} to.`);
      const timestamp = new Date(ms).toISOString();
      // The window of the moment, not of the last status refresh: the replica keeps uploading.
      const win = restoreWindow(await freshStatus(s.name));
      if (!win) throw new Error(`${s.name} has no restore points yet: the replica holds no snapshot.`);
      if (ms < parseTime(win.from) || ms > parseTime(win.to)) {
        throw new Error(`${formatTime(timestamp)} is outside the restorable window of replica ${win.replica}: ${formatTime(win.from)} → ${formatTime(win.to)}.`);
      }
      await restoreReplicaAt(s, timestamp);
    });
  });
  return form;
}

function renderWindow(s) {
  const win = restoreWindow(s.db);
  s.timeInput.min = win ? pickerValue(win.from) : '';
  s.timeInput.max = win ? pickerValue(win.to) : '';
  s.windowText.textContent = win
    ? `Restorable (replica ${win.replica}): ${formatTime(win.from)} → ${formatTime(win.to)}`
    : 'No restore points yet.';
}

/** The status of one database, fetched now. */
async function freshStatus(name) {
  const doc = await callJson('GET', `${API}/status?limit=1000&q=${encodeURIComponent(name)}`);
  const db = (doc.databases || []).find((d) => d.name === name);
  if (!db) throw new Error(`${name} is no longer in /api/v1/status`);
  return db;
}

/** "Undo last restore", offered after a live restore made on this page. */
function renderUndo(s) {
  s.undoBox.hidden = !s.undo;
  if (!s.undo) { s.undoBox.replaceChildren(); return; }
  const button = el('button', { type: 'button', onclick: (e) => undoRestore(s, e.currentTarget) }, 'Undo last restore');
  s.undoBox.replaceChildren(el('span', { text: `${describeRestore(s.undo)} ` }), button);
}

/** Restores the newest pre-restore safety backup: the state right before the last restore. */
function undoRestore(s, button) {
  act(button, `restore ${s.name}`, async () => {
    const doc = await callJson('GET', `${dbPath(s.name)}/backups?kind=pre-restore&limit=1`);
    const b = (doc.backups || [])[0];
    if (!b) throw new Error(`${s.name} has no pre-restore safety backup to undo the restore with`);
    const question = `Undo the last restore of ${s.name}: restore its safety backup "${b.name}" (taken ${formatTime(b.created)}, right before that restore)?\n\nThe live database is replaced. A safety backup of the current database is taken first.`;
    if (!window.confirm(question)) return;
    notify(`Undoing the last restore of ${s.name}…`);
    const result = await restoreGuarded(s, `${dbPath(s.name)}/backups/${encodeURIComponent(b.id)}/restore`, {});
    if (result) await restored(s, result, true);
  });
}

/**
 * A live restore through the schema guard: when the server answers 409 with a schema conflict
 * (the restored content has another schema or user_version than the live database), the
 * differences are shown and the restore is repeated with `force` only if confirmed. Resolves
 * to null when the user declines (nothing was changed).
 */
async function restoreGuarded(s, path, body) {
  try {
    return await callJson('POST', path, body);
  } catch (e) {
    const conflict = e.doc && e.doc.schema_conflict;
    if (!conflict) throw e;
    const names = (list) => list.map((o) => `${o.type} ${o.name}`).join(', ');
    const d = conflict.differences;
    const lines = [`The restored content has a different schema than ${s.name} has now.`, ''];
    if (conflict.live.user_version !== conflict.restore.user_version) {
      lines.push(`user_version: ${conflict.live.user_version} now → ${conflict.restore.user_version} after the restore`);
    }
    if (d.added.length) lines.push(`added by the restore: ${names(d.added)}`);
    if (d.removed.length) lines.push(`removed by the restore: ${names(d.removed)}`);
    if (d.changed.length) lines.push(`changed by the restore: ${names(d.changed)}`);
    lines.push('', 'The application may not expect this schema. Restore anyway?');
    if (!window.confirm(lines.join('\n'))) {
      notify(`Restore of ${s.name} cancelled; nothing was changed.`);
      return null;
    }
    return callJson('POST', path, { ...body, force: true });
  }
}

function describeRestore(r) {
  const from = r.restored_from || {};
  const source = from.backup ? `backup ${from.backup}`
    : `replica ${from.replica} at ${from.timestamp || 'its latest state'}`;
  const safety = r.safety_backup ? ` Safety backup: "${r.safety_backup.name}".` : '';
  const took = typeof r.duration_seconds === 'number' ? ` in ${r.duration_seconds.toFixed(2)} s` : '';
  return `Restored ${r.database} from ${source}${took}; integrity ${r.integrity}.${safety}`;
}

// ---------------------------------------------------------------------------------------------
// Backups: create, list with filters, pin, restore, delete, expire

/** `key=value` items separated by commas or spaces, each checked for its `=`. */
function parseLabels(text) {
  const items = text.split(/[\s,]+/).filter((item) => item);
  for (const item of items) {
    if (item.indexOf('=') < 1) throw new Error(`label "${item}": want key=value`);
  }
  return items;
}

function createForm(s) {
  const form = el('form', { class: 'create' },
    el('label', {}, 'Name ', el('input', { name: 'name', maxlength: 100, placeholder: 'e.g. before-migration' })),
    el('label', {}, 'Description ', el('input', { name: 'description', maxlength: 1000 })),
    el('label', {}, 'Labels ', el('input', { name: 'labels', maxlength: 2000, placeholder: 'env=prod, ticket=OPS-42' })),
    el('button', { type: 'submit' }, 'Create backup'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    act(form.querySelector('button'), `create ${s.name}`, async () => {
      const body = {};
      const name = form.elements.name.value.trim();
      const description = form.elements.description.value.trim();
      const labels = parseLabels(form.elements.labels.value);
      if (name) body.name = name;
      if (description) body.description = description;
      if (labels.length) {
        body.labels = Object.fromEntries(labels.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      }
      notify(`Creating a backup of ${s.name}…`);
      const record = await callJson('POST', `${dbPath(s.name)}/backups`, body);
      notify(`Created backup "${record.name}" of ${s.name} (${formatBytes(record.size)}).`);
      form.reset();
      await loadBackups(s);
    });
  });
  return form;
}

/**
 * Upload of a `.db` file as a backup of kind `uploaded`: sent as the raw body with
 * `?async=true`, then the job is polled (its state shown) until the server has checked it.
 */
function uploadForm(s) {
  const file = el('input', { type: 'file', name: 'file', accept: '.db,.sqlite,.sqlite3,application/vnd.sqlite3' });
  const form = el('form', { class: 'create' },
    el('label', {}, 'Database file ', file),
    el('label', {}, 'Upload as ', el('input', { name: 'name', maxlength: 100, placeholder: 'a name for the uploaded backup' })),
    el('button', { type: 'submit' }, 'Upload backup'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    act(form.querySelector('button'), `upload ${s.name}`, async () => {
      const chosen = file.files && file.files[0];
      if (!chosen) throw new Error('choose a database file to upload');
      const params = ['async=true'];
      const name = form.elements.name.value.trim();
      if (name) params.push(`name=${encodeURIComponent(name)}`);
      notify(`Uploading ${chosen.name} (${formatBytes(chosen.size)}) to ${s.name}…`);
      const path = `${dbPath(s.name)}/backups/upload?${params.join('&')}`;
      const resp = await call('POST', path, undefined, { body: chosen, type: 'application/vnd.sqlite3' });
      const job = await waitForJob(await resp.json(), (j) => notify(`Checking the uploaded file (job ${j.id}: ${j.state})…`));
      const record = job.result;
      notify(`Uploaded backup "${record.name}" of ${s.name} (${formatBytes(record.size)}); integrity ok.`);
      form.reset();
      await loadBackups(s);
    });
  });
  return form;
}

/** Polls a job until it ends; resolves to it when it succeeded, throws its error otherwise. */
async function waitForJob(job, progress) {
  let current = job;
  const deadline = Date.now() + 30 * 60 * 1000;
  while (current.state === 'running') {
    progress(current);
    if (Date.now() > deadline) throw new Error(`job ${current.id} still running after 30 minutes`);
    await new Promise((done) => setTimeout(done, 250));
    current = await callJson('GET', current.url);
  }
  if (current.state !== 'succeeded') {
    const why = current.error && current.error.error ? current.error.error : JSON.stringify(current.error);
    throw new Error(`${current.operation} failed (${current.status}): ${why}`);
  }
  return current;
}

/** Filters of the backups list (the API's `kind` and `label`) and the expire button. */
function createBackupFilter(s) {
  s.filterKind = el('select', { name: 'kind' },
    ['', 'manual', 'pre-restore', 'scheduled', 'uploaded'].map((k) => el('option', { value: k }, k || 'all')));
  s.filterLabels = el('input', { name: 'label', maxlength: 2000, placeholder: 'key=value' });
  const form = el('form', { class: 'create', role: 'search', autocomplete: 'off' },
    el('label', {}, 'Kind ', s.filterKind),
    el('label', {}, 'With labels ', s.filterLabels),
    el('button', { type: 'submit' }, 'Filter backups'),
    el('button', { type: 'button', onclick: (e) => expireDryRun(s, e.currentTarget) }, 'Expire old backups'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    loadBackups(s);
  });
  s.filterKind.addEventListener('change', () => loadBackups(s));
  return form;
}

/** The list request with the chosen filters. */
function backupsPath(s) {
  const params = [];
  if (s.filterKind.value) params.push(`kind=${encodeURIComponent(s.filterKind.value)}`);
  parseLabels(s.filterLabels.value).forEach((l) => params.push(`label=${encodeURIComponent(l)}`));
  return `${dbPath(s.name)}/backups${params.length ? `?${params.join('&')}` : ''}`;
}

function backupsMessage(s, text) {
  s.backups.replaceChildren(el('tr', {}, el('td', { colspan: BACKUP_COLUMNS.length, text })));
}

async function loadBackups(s) {
  s.loads = (s.loads || 0) + 1;
  const mine = s.loads;
  try {
    const doc = await callJson('GET', backupsPath(s));
    // A newer load (another filter) was started meanwhile: its answer is the one to show.
    if (mine !== s.loads) return;
    clearError(`backups ${s.name}`);
    s.backupList = doc.backups || [];
    const rows = s.backupList.map((b) => backupRow(s, b));
    const filtered = s.filterKind.value || s.filterLabels.value.trim();
    if (rows.length) s.backups.replaceChildren(...rows);
    else backupsMessage(s, filtered ? 'No backups match the filter.' : 'No backups yet.');
  } catch (e) {
    if (mine !== s.loads) return;
    showError(`backups ${s.name}`, e.message);
    backupsMessage(s, 'Backups could not be listed (see the error above).');
  }
  renderBackupChoices(s);
  renderTimeline(s);
}

function backupRow(s, b) {
  const label = `backup ${b.name}`;
  const labels = Object.entries(b.labels || {});
  return el('tr', { 'data-id': b.id },
    el('td', { title: b.description || '' }, b.name, b.description ? el('div', { class: 'muted', text: b.description }) : null),
    el('td', { class: 'nowrap' }, el('time', { datetime: b.created, title: b.created }, formatTime(b.created))),
    el('td', { class: 'nowrap' }, formatBytes(b.size)),
    el('td', { class: 'nowrap' }, b.kind),
    el('td', { class: 'labels' }, labels.map(([k, v]) => el('span', { class: 'chip', title: `label ${k}=${v}` }, `${k}=${v}`))),
    el('td', { class: 'nowrap' }, b.pinned ? el('span', { class: 'chip pin', title: 'pinned: never expires, cannot be deleted' }, 'pinned') : null),
    el('td', {}, el('div', { class: 'actions' },
      downloadLink(b.download_url || `${dbPath(s.name)}/backups/${encodeURIComponent(b.id)}`, 'Download', `Download ${label}`),
      el('button', { type: 'button', 'aria-label': `Restore ${label}`, onclick: (e) => restoreBackup(s, b, e.currentTarget) }, 'Restore'),
      b.pinned
        ? el('button', { type: 'button', 'aria-label': `Unpin ${label}`, onclick: (e) => setPin(s, b, false, e.currentTarget) }, 'Unpin')
        : el('button', { type: 'button', 'aria-label': `Pin ${label}`, onclick: (e) => setPin(s, b, true, e.currentTarget) }, 'Pin'),
      el('button', {
        type: 'button', class: 'danger', 'aria-label': `Delete ${label}`, disabled: b.pinned,
        title: b.pinned ? 'Unpin it first to delete it' : null, onclick: (e) => deleteBackup(s, b, e.currentTarget),
      }, 'Delete'))));
}

function setPin(s, b, pin, button) {
  act(button, `pin ${s.name}`, async () => {
    const record = await callJson(pin ? 'POST' : 'DELETE', `${dbPath(s.name)}/backups/${encodeURIComponent(b.id)}/pin`);
    notify(`${record.pinned ? 'Pinned' : 'Unpinned'} backup "${record.name}".`);
    await loadBackups(s);
  });
}

function restoreBackup(s, b, button) {
  const question = `Restore ${s.name} from backup "${b.name}" (created ${formatTime(b.created)})?\n\nThe live database is replaced. A safety backup of the current database is taken first.`;
  if (!window.confirm(question)) return;
  act(button, `restore ${s.name}`, async () => {
    notify(`Restoring ${s.name} from backup "${b.name}"…`);
    const result = await restoreGuarded(s, `${dbPath(s.name)}/backups/${encodeURIComponent(b.id)}/restore`, {});
    if (result) await restored(s, result);
  });
}

function deleteBackup(s, b, button) {
  if (!window.confirm(`Delete backup "${b.name}" of ${s.name}? This cannot be undone.`)) return;
  act(button, `delete ${s.name}`, async () => {
    await callJson('DELETE', `${dbPath(s.name)}/backups/${encodeURIComponent(b.id)}`);
    notify(`Deleted backup "${b.name}".`);
    await loadBackups(s);
  });
}

/** Expire, step one: the dry run's verdict on every backup, and a button for the real run. */
function expireDryRun(s, button) {
  act(button, `expire ${s.name}`, async () => {
    const doc = await callJson('POST', `${dbPath(s.name)}/backups/expire`, { dry_run: true });
    const verdicts = doc.backups || [];
    const going = verdicts.filter((v) => !v.keep);
    const run = el('button', {
      type: 'button', class: 'danger', disabled: going.length === 0,
      onclick: (e) => expireNow(s, going, e.currentTarget),
    }, `Expire ${going.length} backup${going.length === 1 ? '' : 's'}`);
    s.expire.hidden = false;
    s.expire.replaceChildren(
      el('p', {}, going.length
        ? `Dry run: ${going.length} of ${verdicts.length} backups would expire.`
        : `Dry run: nothing would expire; all ${verdicts.length} backups are kept.`),
      el('table', { class: 'verdicts' },
        el('caption', { class: 'visually-hidden' }, `Expire verdicts of ${s.name}`),
        el('thead', {}, el('tr', {}, ['Name', 'Kind', 'Created', 'Verdict', 'Why'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, verdicts.map((v) => el('tr', { class: v.keep ? '' : 'going' },
          el('td', {}, v.name), el('td', {}, v.kind), el('td', { class: 'nowrap' }, formatTime(v.created)),
          el('td', { class: v.keep ? 'good' : 'bad' }, v.keep ? 'keep' : 'expire'),
          el('td', {}, v.keep ? (v.reasons || []).join(', ') : 'no retention rule keeps it'))))),
      el('div', { class: 'actions' }, run,
        el('button', { type: 'button', onclick: () => { s.expire.hidden = true; s.expire.replaceChildren(); } }, 'Close')));
  });
}

/** Expire, step two: asks, then applies the policies for real. */
function expireNow(s, going, button) {
  const names = going.map((v) => `"${v.name}"`).join(', ');
  if (!window.confirm(`Expire (delete) ${going.length} backups of ${s.name}: ${names}? This cannot be undone.`)) return;
  act(button, `expire ${s.name}`, async () => {
    const doc = await callJson('POST', `${dbPath(s.name)}/backups/expire`, { dry_run: false });
    const gone = (doc.backups || []).filter((v) => !v.keep).length;
    notify(`Expired ${gone} backup${gone === 1 ? '' : 's'} of ${s.name}.`);
    s.expire.hidden = true;
    s.expire.replaceChildren();
    await loadBackups(s);
  });
}

// ---------------------------------------------------------------------------------------------
// Compare and export

const COMPARE_PAGE = 50;

/** The choices of A, B and the export source: `live` and every listed backup. */
function renderBackupChoices(s) {
  const options = [['live', 'live database'], ...s.backupList.map((b) => [b.id, `${b.name} (${b.kind}, ${formatTime(b.created)})`])];
  for (const select of [s.compareA, s.compareB, s.exportFrom]) {
    const keep = select.value;
    select.replaceChildren(...options.map(([value, text]) => el('option', { value }, text)));
    if (options.some(([value]) => value === keep)) select.value = keep;
  }
}

function createCompare(s) {
  s.compareA = el('select', { name: 'a' });
  s.compareB = el('select', { name: 'b' });
  s.compareLimit = el('input', { type: 'number', name: 'limit', min: 1, max: 1000, value: COMPARE_PAGE });
  s.compareOut = el('div', { class: 'compare-result' });
  const form = el('form', { class: 'create', autocomplete: 'off' },
    el('label', {}, 'Compare A ', s.compareA), el('label', {}, 'with B ', s.compareB),
    el('label', {}, 'Rows per page ', s.compareLimit),
    el('button', { type: 'submit' }, 'Compare'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    runCompare(s, { a: s.compareA.value, b: s.compareB.value, limit: Number(s.compareLimit.value) || COMPARE_PAGE, offset: 0 }, form.querySelector('button'));
  });
  return el('div', {}, form, s.compareOut);
}

function runCompare(s, q, button) {
  act(button, `compare ${s.name}`, async () => {
    if (!q.a || !q.b) throw new Error('Pick A and B to compare.');
    const path = `${dbPath(s.name)}/backups/compare?a=${encodeURIComponent(q.a)}&b=${encodeURIComponent(q.b)}&offset=${q.offset}&limit=${q.limit}`;
    const doc = await callJson('GET', path);
    s.compare = { q, doc };
    s.exportTables.replaceChildren(...(doc.tables || []).map((t) => el('option', { value: t.name })));
    renderCompare(s);
  });
}

const sideName = (s, id) => (id === 'live' ? 'live' : ((s.backupList.find((b) => b.id === id) || {}).name || id));

/** One value of a compared row as text: NULL, a number, text (maybe cut) or a blob's start. */
function formatValue(v) {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object' && 'text' in v) return `${v.text}… (${v.chars} characters)`;
  if (typeof v === 'object' && 'blob' in v) return `x'${v.blob}'… (${v.bytes} bytes)`;
  return String(v);
}

function formatRow(columns, values) {
  if (!values) return '—';
  return values.map((v, i) => `${columns[i] || `#${i + 1}`}=${formatValue(v)}`).join(', ');
}

const CELL_CHARS = 160;

/** A compared row's cell: cut to CELL_CHARS characters, the whole row in its tooltip. */
function rowCell(columns, values) {
  const text = formatRow(columns, values);
  const cut = text.length > CELL_CHARS ? `${text.slice(0, CELL_CHARS)}…` : text;
  return el('td', { class: 'value', title: cut === text ? null : text }, cut);
}

function renderCompare(s) {
  const { q, doc } = s.compare;
  const a = sideName(s, q.a);
  const b = sideName(s, q.b);
  const schema = doc.schema || { added: [], removed: [], changed: [] };
  const objects = (list) => list.map((o) => `${o.type} ${o.name}`).join(', ');
  const schemaLines = [
    schema.added.length ? `in B, not in A: ${objects(schema.added)}` : null,
    schema.removed.length ? `in A, not in B: ${objects(schema.removed)}` : null,
    schema.changed.length ? `defined differently: ${objects(schema.changed)}` : null,
  ].filter((line) => line);
  const tables = doc.tables || [];
  const columns = new Map(tables.map((t) => [t.name, t.columns || []]));
  const count = (n) => (n === null || n === undefined ? '—' : String(n));
  const rows = doc.rows || [];
  const first = doc.offset + 1;
  s.compareOut.replaceChildren(
    el('p', { class: doc.identical ? 'good' : '' }, doc.identical ? `A (${a}) and B (${b}) are identical.` : `A = ${a}, B = ${b}.`),
    el('h4', {}, 'Schema'),
    schemaLines.length ? el('ul', {}, schemaLines.map((line) => el('li', { text: line }))) : el('p', { class: 'muted', text: 'The same schema.' }),
    el('h4', {}, 'Tables'),
    el('table', { class: 'compare-tables' },
      el('thead', {}, el('tr', {}, ['Table', 'Rows in A', 'Rows in B', 'Added', 'Removed', 'Changed', 'Note'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, tables.map((t) => el('tr', { 'data-table': t.name },
        el('td', {}, t.name), el('td', {}, count(t.rows_a)), el('td', {}, count(t.rows_b)),
        el('td', {}, count(t.added)), el('td', {}, count(t.removed)), el('td', {}, count(t.changed)),
        el('td', { class: 'muted' }, t.note || (t.compared ? '' : 'not compared')))))),
    el('h4', {}, rows.length ? `Changed rows ${first}–${doc.offset + rows.length}` : 'Changed rows'),
    rows.length === 0 ? el('p', { class: 'muted', text: doc.offset ? 'No more changed rows.' : 'No changed rows.' }) : el('table', { class: 'compare-rows' },
      el('thead', {}, el('tr', {}, ['Table', 'Change', 'Key', 'A', 'B'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.map((r) => el('tr', { 'data-change': r.change },
        el('td', {}, r.table), el('td', {}, r.change), el('td', {}, el('code', {}, (r.key || []).map(formatValue).join(', '))),
        rowCell(columns.get(r.table) || [], r.a), rowCell(columns.get(r.table) || [], r.b))))),
    el('div', { class: 'actions' },
      doc.offset > 0 ? el('button', { type: 'button', onclick: (e) => runCompare(s, { ...q, offset: 0 }, e.currentTarget) }, 'First changed rows') : null,
      doc.next_offset ? el('button', { type: 'button', onclick: (e) => runCompare(s, { ...q, offset: doc.next_offset }, e.currentTarget) }, 'More changed rows') : null));
}

/** CSV export of one table of a backup or the live database (fetched with the token). */
function createExport(s) {
  s.exportFrom = el('select', { name: 'source' });
  s.exportTables = el('datalist', { id: `tables-${view.sections.size}` });
  s.exportTable = el('input', { name: 'table', maxlength: 1000, list: s.exportTables.id, placeholder: 'table name' });
  const form = el('form', { class: 'create', autocomplete: 'off' },
    el('label', {}, 'Export from ', s.exportFrom), el('label', {}, 'Table ', s.exportTable), s.exportTables,
    el('button', { type: 'submit' }, 'Download CSV'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    act(form.querySelector('button'), `export ${s.name}`, async () => {
      const table = s.exportTable.value.trim();
      if (!table) throw new Error('Name the table to export (Compare lists them).');
      await saveBlob(`${dbPath(s.name)}/backups/${encodeURIComponent(s.exportFrom.value)}/export?table=${encodeURIComponent(table)}`);
    });
  });
  return form;
}

// ---------------------------------------------------------------------------------------------
// Timeline

/** A row of markers by time: the first replica's restorable window and every listed backup. */
function renderTimeline(s) {
  if (!s.timeline) return;
  const win = restoreWindow(s.db);
  const marks = s.backupList.map((b) => ({ b, at: parseTime(b.created) })).filter((m) => !Number.isNaN(m.at));
  const now = parseTime(view.status && view.status.time);
  const times = [...marks.map((m) => m.at), now, ...(win ? [parseTime(win.from), parseTime(win.to)] : [])]
    .filter((t) => !Number.isNaN(t));
  if (marks.length === 0 && !win) {
    s.timeline.replaceChildren(el('p', { class: 'muted', text: 'No restore points or backups yet.' }));
    return;
  }
  const lo = Math.min(...times);
  const span = Math.max(Math.max(...times) - lo, 1000);
  const at = (t) => `${(((t - lo) / span) * 100).toFixed(3)}%`;
  const bar = el('div', { class: 'timeline-bar' });
  if (win) {
    const from = parseTime(win.from);
    const band = el('span', { class: 'timeline-window', title: `restorable: ${formatTime(win.from)} → ${formatTime(win.to)}` });
    band.style.left = at(from);
    band.style.width = `${Math.max(((parseTime(win.to) - from) / span) * 100, 0.5).toFixed(3)}%`;
    bar.append(band);
  }
  for (const m of marks) {
    const text = `backup ${m.b.name} (${m.b.kind}${m.b.pinned ? ', pinned' : ''}) at ${formatTime(m.b.created)}`;
    const marker = el('span', { class: `marker ${m.b.kind}`, role: 'img', 'aria-label': text, title: text, 'data-id': m.b.id });
    marker.style.left = at(m.at);
    bar.append(marker);
  }
  s.timeline.replaceChildren(bar,
    el('div', { class: 'timeline-axis muted' }, el('span', { text: formatTime(new Date(lo).toISOString()) }),
      el('span', { text: formatTime(new Date(lo + span).toISOString()) })),
    el('p', { class: 'muted' },
      el('span', { class: 'key window' }), win ? ` restorable window (replica ${win.replica})  ` : ' no restore points yet  ',
      el('span', { class: 'key manual' }), ' manual ', el('span', { class: 'key scheduled' }), ' scheduled ',
      el('span', { class: 'key pre-restore' }), ' pre-restore'));
}

// ---------------------------------------------------------------------------------------------
// Token and start-up

function showTokenState() {
  $('token-state').textContent = token() ? 'Token saved for this tab.' : 'No token saved.';
}

function reloadAll() {
  showTokenState();
  refreshStatus();
  view.sections.forEach(loadBackups);
}

function start() {
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('token');
    if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = '';
    reloadAll();
  });
  $('token-clear').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    reloadAll();
  });
  let searchTimer = null;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => setQuery({ q: $('search').value.trim(), offset: 0 }), SEARCH_DELAY_MS);
  });
  $('filter').addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    setQuery({ q: $('search').value.trim(), offset: 0 });
  });
  $('state').addEventListener('change', () => setQuery({ state: $('state').value, offset: 0 }));
  $('prev').addEventListener('click', () => setQuery({ offset: Math.max(0, view.query.offset - PAGE_SIZE) }));
  $('next').addEventListener('click', () => setQuery({ offset: view.query.offset + PAGE_SIZE }));
  showTokenState();
  refreshStatus();
  setInterval(refreshStatus, STATUS_EVERY_MS);
  setInterval(tick, 1000);
}

start();
