// walstream admin page script, served as /assets/app.js by src/server/page.rs.
// Owns: showing one page of databases (GET /api/v1/status?limit&offset&q&state: the search box,
// state filter and paging work server-side, so 10,000 databases cost one page), their continuous
// backup (…/restore-points, loaded only when a database's restore points are opened) and
// manual backups (…/backups), and the admin actions: create, download, restore and delete
// backups, point-in-time restore from the replica, download of the replica's latest state.
// Must stay true: every API call sends the saved bearer token, downloads too (always fetched, never
// a plain link: the server refuses database content without the token); every failed call
// is shown in the error area, never swallowed; restores and deletes ask for confirmation first
// (a restore that would change the schema asks again, showing the differences);
// data reaches the page through textContent only (never innerHTML); no request leaves this origin.
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
async function call(method, path, body) {
  const init = { method, headers: {} };
  if (token()) init.headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) {
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

function renderPanel(section, db) {
  const health = !db.attached ? 'waiting for the database file'
    : db.last_error ? `sync failing: ${db.last_error}` : 'replicating';
  section.headline.replaceChildren(
    el('span', { class: db.last_error || !db.attached ? 'bad' : 'good' }, health), ' · ',
    'Last sync: ', agoSpan(db.last_sync));
  section.summary.replaceChildren(
    el('dt', {}, 'Size'), el('dd', {}, `${formatBytes(db.size)} (WAL ${formatBytes(db.wal_size)})`),
    el('dt', {}, 'Position'), el('dd', {}, el('code', {}, formatPosition(db.position))),
  );
  section.replicas.replaceChildren(...(db.replicas || []).map(renderReplica));
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

function createSection(db) {
  const name = db.name;
  const titleId = `db-${view.sections.size}`;
  const s = { name };
  s.headline = el('p', { class: 'headline' });
  s.summary = el('dl', { class: 'summary' });
  s.replicas = el('div', { class: 'replicas' });
  s.points = el('div', { class: 'points', hidden: true });
  s.pointsButton = el('button', { type: 'button', 'aria-expanded': 'false', onclick: () => togglePoints(s) }, 'View restore points');
  s.backups = el('tbody', {}, el('tr', {}, el('td', { colspan: 5, text: 'Loading backups…' })));
  s.root = el('section', { class: 'db', 'aria-labelledby': titleId, 'data-db': name },
    el('h2', { id: titleId }, name), el('p', { class: 'muted', text: db.path }),
    el('div', { class: 'panel' },
      el('h3', {}, 'Continuous backup'), s.headline, s.summary, s.replicas,
      el('div', { class: 'actions' }, s.pointsButton,
        downloadLink(`${dbPath(name)}/replica/latest.db`, 'Download latest from replica', `Download the latest state of ${name} from the replica`)),
      s.points),
    el('div', { class: 'panel' },
      el('h3', {}, 'Manual backups'), createForm(s),
      el('table', {},
        el('caption', { class: 'visually-hidden' }, `Manual backups of ${name}`),
        el('thead', {}, el('tr', {}, ['Name', 'Created', 'Size', 'Kind', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))),
        s.backups)));
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
  const question = `Restore ${s.name} to ${timestamp}?\n\nThe live database is replaced by the replica's state at that time. A safety backup of the current database is taken first.`;
  if (!window.confirm(question)) return;
  act(button, `restore ${s.name}`, async () => {
    notify(`Restoring ${s.name} to ${timestamp}…`);
    const result = await restoreGuarded(s, `${dbPath(s.name)}/restore`, { timestamp });
    if (!result) return;
    notify(describeRestore(result));
    await Promise.all([loadBackups(s), refreshStatus()]);
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
// Manual backups

function createForm(s) {
  const form = el('form', { class: 'create' },
    el('label', {}, 'Name ', el('input', { name: 'name', maxlength: 100, placeholder: 'e.g. before-migration' })),
    el('label', {}, 'Description ', el('input', { name: 'description', maxlength: 1000 })),
    el('button', { type: 'submit' }, 'Create backup'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = {};
    const name = form.elements.name.value.trim();
    const description = form.elements.description.value.trim();
    if (name) body.name = name;
    if (description) body.description = description;
    act(form.querySelector('button'), `create ${s.name}`, async () => {
      notify(`Creating a backup of ${s.name}…`);
      const record = await callJson('POST', `${dbPath(s.name)}/backups`, body);
      notify(`Created backup "${record.name}" of ${s.name} (${formatBytes(record.size)}).`);
      form.reset();
      await loadBackups(s);
    });
  });
  return form;
}

async function loadBackups(s) {
  try {
    const doc = await callJson('GET', `${dbPath(s.name)}/backups`);
    clearError(`backups ${s.name}`);
    const rows = (doc.backups || []).map((b) => backupRow(s, b));
    s.backups.replaceChildren(...(rows.length ? rows
      : [el('tr', {}, el('td', { colspan: 5, text: 'No backups yet.' }))]));
  } catch (e) {
    showError(`backups ${s.name}`, e.message);
    s.backups.replaceChildren(el('tr', {}, el('td', { colspan: 5, text: 'Backups could not be listed (see the error above).' })));
  }
}

function backupRow(s, b) {
  const label = `backup ${b.name}`;
  return el('tr', { 'data-id': b.id },
    el('td', { title: b.description || '' }, b.name, b.description ? el('div', { class: 'muted', text: b.description }) : null),
    el('td', { class: 'nowrap' }, el('time', { datetime: b.created, title: b.created }, formatTime(b.created))),
    el('td', { class: 'nowrap' }, formatBytes(b.size)),
    el('td', { class: 'nowrap' }, b.kind),
    el('td', {}, el('div', { class: 'actions' },
      downloadLink(b.download_url || `${dbPath(s.name)}/backups/${encodeURIComponent(b.id)}`, 'Download', `Download ${label}`),
      el('button', { type: 'button', 'aria-label': `Restore ${label}`, onclick: (e) => restoreBackup(s, b, e.currentTarget) }, 'Restore'),
      el('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${label}`, onclick: (e) => deleteBackup(s, b, e.currentTarget) }, 'Delete'))));
}

function restoreBackup(s, b, button) {
  const question = `Restore ${s.name} from backup "${b.name}" (created ${formatTime(b.created)})?\n\nThe live database is replaced. A safety backup of the current database is taken first.`;
  if (!window.confirm(question)) return;
  act(button, `restore ${s.name}`, async () => {
    notify(`Restoring ${s.name} from backup "${b.name}"…`);
    const result = await restoreGuarded(s, `${dbPath(s.name)}/backups/${encodeURIComponent(b.id)}/restore`, {});
    if (!result) return;
    notify(describeRestore(result));
    await Promise.all([loadBackups(s), refreshStatus()]);
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
