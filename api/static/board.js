// The alarm board: the duty room's main screen.

import { t, tCode } from './i18n.js';
import { html, raw, fmtTime, fmtNum, fmtClock, href, toast, reportError } from './ui.js';
import { createAlarmFeed } from './feed.js';
import {
  STATES, OPEN_STATES, CONDITIONS, PRIORITIES, compareAlarms, matchesState, isUnacked,
  isAckable, isShelvable, isUnshelvable, isResettable, prioKey, prioClass, stateBadge, prioBadge,
  acknowledge, shelve, unshelve, reset,
} from './alarms.js';
import {
  loadEnterprises, enterpriseName, hazardName, ensureHazardNames, onNames, loadHazardSources,
} from './names.js';
import { beep, soundEnabled, setSoundEnabled } from './sound.js';
import { newIncidentDialog } from './incidents.js';

const MAX_ROWS = 500;
const NEW_HIGHLIGHT_MS = 8000;
const STATE_FILTERS = ['open', 'active', 'all', ...OPEN_STATES];

const actionable = (a) => isAckable(a) || isShelvable(a);

export function mountBoard(root, query) {
  const f = {
    enterprise: query.enterprise || '',
    hazard_source: query.hazard_source || '',
    condition: CONDITIONS.includes(query.condition) ? query.condition : '',
    priority: PRIORITIES.includes(query.priority) ? query.priority : '',
    state: STATE_FILTERS.includes(query.state) ? query.state : 'open',
  };
  let items = [];
  let byId = new Map();
  let loaded = false;
  let seen = null;                 // id -> {activated_at, state} of the last update
  const newUntil = new Map();      // id -> time until which the row is highlighted
  const selected = new Set();
  const rows = new Map();          // id -> <tr>
  let feed = null;
  let failingSince = null;
  let lastOk = null;
  let feedStatus = { mode: 'stream' };
  let enterprises = [];
  let highlightTimer = null;
  let disposed = false;

  root.innerHTML = html`
    <section class="board">
      <div class="offline-banner" id="offline" role="alert" hidden></div>
      <div class="tiles" id="tiles"></div>
      <div class="toolbar">
        <label>${t('filter.enterprise')}<select id="f-enterprise"></select></label>
        <label>${t('filter.hazard')}<select id="f-hazard"></select></label>
        <label>${t('filter.priority')}<select id="f-priority">
          <option value="">${t('filter.all')}</option>
          ${PRIORITIES.map((p) => html`<option value="${p}">${tCode('prio', p)}</option>`)}
        </select></label>
        <label>${t('filter.condition')}<select id="f-condition">
          <option value="">${t('filter.all')}</option>
          ${CONDITIONS.map((c) => raw(`<option value="${c}">${c}</option>`))}
        </select></label>
        <label>${t('filter.state')}<select id="f-state">
          ${STATE_FILTERS.map((s) => html`<option value="${s}">${s === s.toLowerCase() ? t('filter.state.' + s) : tCode('state', s)}</option>`)}
        </select></label>
        <button class="btn" id="f-reset" type="button">${t('filter.reset')}</button>
        <span class="spacer"></span>
        <button class="btn btn-primary" id="bulk-ack" type="button" disabled></button>
        <button class="btn btn-shelve" id="bulk-shelve" type="button" disabled></button>
        <button class="btn" id="bulk-incident" type="button" disabled></button>
        <button class="btn" id="sound" type="button" title="${t('board.sound')}"></button>
        <span class="feed-status" id="status"></span>
      </div>
      <div class="table-wrap" id="wrap">
        <table class="alarms" id="alarms">
          <thead><tr>
            <th class="c-sel"><input type="checkbox" id="sel-all" title="${t('board.select_all')}" aria-label="${t('board.select_all')}"></th>
            <th class="c-dot"></th>
            <th class="c-time">${t('col.time')}</th>
            <th>${t('col.enterprise')}</th>
            <th>${t('col.hazard')}</th>
            <th>${t('col.tag')}</th>
            <th>${t('col.condition')}</th>
            <th>${t('col.priority')}</th>
            <th>${t('col.state')}</th>
            <th class="num">${t('col.value')}</th>
            <th class="num">${t('col.limit')}</th>
            <th class="c-act">${t('col.action')}</th>
          </tr></thead>
          <tbody id="tbody"></tbody>
        </table>
        <div class="empty" id="empty">${t('board.loading')}</div>
        <div class="note" id="note" hidden></div>
      </div>
    </section>`.__raw;

  const $ = (id) => root.querySelector('#' + id);
  const tbody = $('tbody');
  const selEnt = $('f-enterprise');
  const selHs = $('f-hazard');
  $('f-condition').value = f.condition;
  $('f-priority').value = f.priority;
  $('f-state').value = f.state;

  // ---- filters ----------------------------------------------------------

  function fillEnterprises() {
    const codes = new Map(enterprises.map((e) => [e.code, e.name || e.code]));
    for (const a of items) if (a.enterprise && !codes.has(a.enterprise)) codes.set(a.enterprise, enterpriseName(a.enterprise) || a.enterprise);
    if (f.enterprise && !codes.has(f.enterprise)) codes.set(f.enterprise, f.enterprise);
    const opts = [...codes.entries()].sort((a, b) => a[1].localeCompare(b[1], 'zh-CN'));
    const sig = opts.map((o) => o.join('\u0001')).join('\u0002');
    if (selEnt.dataset.sig === sig) return;
    selEnt.dataset.sig = sig;
    selEnt.innerHTML = html`<option value="">${t('filter.all')}</option>${opts.map(([c, n]) => html`<option value="${c}">${n === c ? c : `${n} (${c})`}</option>`)}`.__raw;
    selEnt.value = f.enterprise;
  }

  // Hazard sources: those of the chosen enterprise, else those seen in the alarms.
  let hsOfEnterprise = [];
  function fillHazards() {
    const opts = new Map();
    if (f.enterprise) {
      for (const h of hsOfEnterprise) opts.set(h.code, h.name && h.name !== h.code ? `${h.name} (${h.code})` : h.code);
    } else {
      for (const a of items) {
        if (!a.hazard_source || opts.has(a.hazard_source)) continue;
        const n = hazardName(a.enterprise, a.hazard_source);
        opts.set(a.hazard_source, n ? `${n} (${a.hazard_source})` : a.hazard_source);
      }
    }
    if (f.hazard_source && !opts.has(f.hazard_source)) opts.set(f.hazard_source, f.hazard_source);
    const list = [...opts.entries()].sort((a, b) => a[1].localeCompare(b[1], 'zh-CN', { numeric: true }));
    const sig = list.map((o) => o.join('\u0001')).join('\u0002');
    if (selHs.dataset.sig === sig) return;
    selHs.dataset.sig = sig;
    selHs.innerHTML = html`<option value="">${t('filter.all')}</option>${list.map(([c, n]) => html`<option value="${c}">${n}</option>`)}`.__raw;
    selHs.value = f.hazard_source;
  }
  function loadHazardOptions() {
    hsOfEnterprise = [];
    fillHazards();
    if (!f.enterprise) return;
    const want = f.enterprise;
    loadHazardSources(want).then((list) => {
      if (disposed || f.enterprise !== want) return;
      hsOfEnterprise = list;
      fillHazards();
    }).catch(() => {});
  }

  function serverQuery() {
    return {
      state: f.state === 'all' ? undefined : 'open',
      enterprise: f.enterprise || undefined,
      hazard_source: f.hazard_source || undefined,
      condition: f.condition || undefined,
    };
  }

  function syncUrl() {
    const h = href(['alarms'], {
      enterprise: f.enterprise, hazard_source: f.hazard_source, condition: f.condition,
      priority: f.priority, state: f.state === 'open' ? '' : f.state, feed: query.feed,
    });
    if (location.hash !== h) history.replaceState(null, '', h);
  }

  function startFeed() {
    if (feed) feed.stop();
    loaded = false;
    seen = null;
    newUntil.clear();
    feed = createAlarmFeed({
      query: serverQuery(),
      mode: query.feed,
      onItems(list) {
        items = list;
        byId = new Map(list.map((a) => [String(a.id), a]));
        detectNew(list);
        loaded = true;
        fillEnterprises();
        fillHazards();
        ensureHazardNames(new Set(list.map((a) => a.enterprise)));
        render();
      },
      onStatus(s) {
        feedStatus = s;
        if (s.ok) {
          failingSince = null;
          lastOk = new Date();
        } else if (!failingSince && !s.reconnecting) {
          failingSince = new Date();
          reportError(s.error);
        }
        renderStatus(s.error);
      },
    });
  }

  function onFilter(key, value, restart) {
    f[key] = value;
    syncUrl();
    if (restart) startFeed(); else render();
  }
  selEnt.addEventListener('change', () => {
    f.hazard_source = '';
    f.enterprise = selEnt.value;
    loadHazardOptions();
    onFilter('enterprise', selEnt.value, true);
  });
  selHs.addEventListener('change', () => onFilter('hazard_source', selHs.value, true));
  $('f-condition').addEventListener('change', (e) => onFilter('condition', e.target.value, true));
  $('f-priority').addEventListener('change', (e) => onFilter('priority', e.target.value, false));
  $('f-state').addEventListener('change', (e) => {
    const before = f.state === 'all';
    onFilter('state', e.target.value, before !== (e.target.value === 'all'));
  });
  $('f-reset').addEventListener('click', () => {
    const restart = f.enterprise || f.hazard_source || f.condition || f.state === 'all';
    Object.assign(f, { enterprise: '', hazard_source: '', condition: '', priority: '', state: 'open' });
    selEnt.value = ''; $('f-condition').value = ''; $('f-priority').value = ''; $('f-state').value = 'open';
    loadHazardOptions();
    syncUrl();
    if (restart) startFeed(); else render();
  });

  // ---- new alarms -------------------------------------------------------

  function detectNew(list) {
    const now = Date.now();
    const next = new Map();
    let alert = false;
    for (const a of list) {
      next.set(a.id, { activated_at: a.activated_at, state: a.state });
      if (!seen) continue;                       // first load: nothing is "new"
      const prev = seen.get(a.id);
      const fresh = !prev || prev.activated_at !== a.activated_at
        || (a.state === 'UNACK_ACTIVE' && prev.state !== 'UNACK_ACTIVE');
      if (fresh) {
        newUntil.set(a.id, now + NEW_HIGHLIGHT_MS);
        if (a.state === 'UNACK_ACTIVE' && prioClass(a.priority) === 'high') alert = true;
      }
    }
    seen = next;
    if (newUntil.size) { clearTimeout(highlightTimer); highlightTimer = setTimeout(render, NEW_HIGHLIGHT_MS + 50); }
    if (alert && soundEnabled()) beep();
  }

  // ---- rendering --------------------------------------------------------

  function visible() {
    return items
      .filter((a) => matchesState(a, f.state) && (!f.priority || prioKey(a.priority) === f.priority))
      .sort(compareAlarms);
  }

  function actionsOf(a) {
    const b = [];
    if (isAckable(a)) b.push(html`<button class="btn btn-ack" type="button" data-act="ack" data-id="${a.id}">${t('ack.one')}</button>`);
    if (isShelvable(a)) b.push(html`<button class="btn btn-sm" type="button" data-act="shelve" data-id="${a.id}">${t('shelve.one')}</button>`);
    if (isUnshelvable(a)) b.push(html`<button class="btn btn-sm" type="button" data-act="unshelve" data-id="${a.id}">${t('unshelve.one')}</button>`);
    if (isResettable(a)) b.push(html`<button class="btn btn-sm" type="button" data-act="reset" data-id="${a.id}">${t('reset.one')}</button>`);
    return b;
  }

  function rowCells(a) {
    const ent = enterpriseName(a.enterprise);
    const hsName = a.hazard_source ? hazardName(a.enterprise, a.hazard_source) : '';
    const hs = a.hazard_source
      ? html`<a href="${href(['hazard', a.enterprise, a.hazard_source])}">${hsName || a.hazard_source}</a>`
      : '';
    const tag = a.tag
      ? html`<a class="tag" href="${href(['point', a.enterprise, a.tag])}">${a.tag}</a>`
      : html`<span class="muted">${t('board.gateway', { gw: a.gateway ?? '' })}</span>`;
    const sel = actionable(a);
    const extra = a.state === 'SHELVED' && a.shelved_until
      ? html`<div class="sub">${t('shelve.until', { time: fmtTime(a.shelved_until).slice(5, 16) })}</div>`
      : (a.latched && !a.active ? html`<div class="sub">${t('reset.latched')}</div>` : '');
    return html`
      <td class="c-sel">${sel ? html`<input type="checkbox" data-id="${a.id}" ${raw(selected.has(String(a.id)) ? 'checked' : '')} aria-label="select">` : ''}</td>
      <td class="c-dot">${isUnacked(a) ? raw('<span class="dot"></span>') : ''}</td>
      <td class="c-time">${fmtTime(a.activated_at)}</td>
      <td title="${a.enterprise}">${ent || a.enterprise}${ent ? html` <span class="code">${a.enterprise}</span>` : ''}</td>
      <td title="${a.hazard_source ?? ''}">${hs}</td>
      <td>${tag}</td>
      <td><span class="cond">${a.condition}</span>${a.activations > 1 ? html` <span class="reps" title="${t('board.activations', { n: a.activations })}">×${a.activations}</span>` : ''}</td>
      <td>${prioBadge(a.priority)}</td>
      <td>${stateBadge(a.state, a)}${extra}</td>
      <td class="num">${fmtNum(a.value)}</td>
      <td class="num">${fmtNum(a.limit)}</td>
      <td class="c-act"><span class="acts">${actionsOf(a)}</span></td>`.__raw;
  }

  function render() {
    const list = visible();
    const shown = list.slice(0, MAX_ROWS);
    const now = Date.now();
    for (const [id, until] of newUntil) if (until <= now) newUntil.delete(id);

    // Selection only keeps what is still shown and can be acted on.
    const selectable = new Set(shown.filter(actionable).map((a) => String(a.id)));
    for (const id of selected) if (!selectable.has(id)) selected.delete(id);

    const keep = new Set();
    const order = [];
    for (const a of shown) {
      const id = String(a.id);
      keep.add(id);
      let tr = rows.get(id);
      if (!tr) { tr = document.createElement('tr'); tr.dataset.id = id; rows.set(id, tr); }
      const cls = `prio-${prioClass(a.priority)} st-${a.state}${isUnacked(a) ? ' unack' : ''}${newUntil.has(a.id) ? ' is-new' : ''}`;
      if (tr.className !== cls) tr.className = cls;
      if (tr.dataset.state !== a.state) tr.dataset.state = a.state;
      const cells = rowCells(a);
      if (tr._html !== cells) { tr.innerHTML = cells; tr._html = cells; }
      order.push(tr);
    }
    for (const [id, tr] of rows) if (!keep.has(id)) { tr.remove(); rows.delete(id); }
    // Re-insert only when the order changed (moving nodes restarts highlights).
    const current = [...tbody.children];
    if (current.length !== order.length || current.some((tr, i) => tr !== order[i])) {
      order.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
    }

    const empty = $('empty');
    empty.hidden = shown.length > 0;
    empty.textContent = loaded ? t('board.empty') : t('board.loading');
    const note = $('note');
    note.hidden = list.length <= MAX_ROWS;
    note.textContent = t('board.truncated', { n: MAX_ROWS });

    renderTiles();
    renderSelection(selectable);
    renderStatus();
    const unack = items.filter(isUnacked).length;
    document.title = `${unack ? `(${unack}) ` : ''}${t('nav.alarms')} · hazmon`;
  }

  function renderTiles() {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
    let highUnack = 0;
    for (const a of items) {
      counts[a.state] = (counts[a.state] || 0) + 1;
      if (a.state === 'UNACK_ACTIVE' && prioClass(a.priority) === 'high') highUnack++;
    }
    const states = f.state === 'all' ? STATES : OPEN_STATES;
    $('tiles').innerHTML = html`
      ${states.map((s) => html`<button type="button" class="tile tile-${s}${f.state === s ? ' on' : ''}" data-state="${s}">
          <span class="n">${counts[s] || 0}</span><span class="l">${tCode('state', s)}</span></button>`)}
      <div class="tile tile-high${highUnack ? ' alert' : ''}"><span class="n">${highUnack}</span><span class="l">${t('board.high_unack')}</span></div>
      <div class="tile tile-total"><span class="n">${items.length}</span><span class="l">${t('board.total')}</span></div>`.__raw;
  }

  function selectedAlarms() {
    return [...selected].map((id) => byId.get(id)).filter(Boolean);
  }

  function renderSelection(selectable) {
    const sel = selectedAlarms();
    const nAck = sel.filter(isAckable).length;
    const nShelve = sel.filter(isShelvable).length;
    const ack = $('bulk-ack');
    ack.textContent = t('ack.bulk', { n: nAck });
    ack.disabled = nAck === 0;
    const sh = $('bulk-shelve');
    sh.textContent = t('shelve.bulk', { n: nShelve });
    sh.disabled = nShelve === 0;
    const inc = $('bulk-incident');
    const ents = new Set(sel.map((a) => a.enterprise));
    inc.textContent = t('inc.bulk', { n: sel.length });
    inc.disabled = sel.length === 0 || ents.size !== 1;
    inc.title = ents.size > 1 ? t('inc.one_enterprise') : '';
    const all = $('sel-all');
    all.checked = selectable.size > 0 && selected.size === selectable.size;
    all.indeterminate = selected.size > 0 && selected.size < selectable.size;
    all.disabled = selectable.size === 0;
  }

  function renderStatus(error) {
    const el = $('status');
    const fallback = feedStatus.mode === 'poll' && feedStatus.fallback;
    const mode = feedStatus.mode === 'stream' ? t('board.feed.stream') : (fallback ? t('board.feed.fallback') : t('board.feed.poll'));
    const banner = $('offline');
    banner.hidden = !failingSince;
    $('wrap').classList.toggle('stale', !!failingSince);
    el.dataset.mode = feedStatus.mode || '';
    if (failingSince) {
      el.className = 'feed-status bad';
      el.textContent = t('board.offline', { time: fmtClock(failingSince) });
      if (error && error.message) { el.title = error.message; banner.dataset.detail = error.message; }
      banner.textContent = `${t('board.offline', { time: fmtClock(failingSince) })}${banner.dataset.detail ? ' — ' + banner.dataset.detail : ''}`;
    } else if (feedStatus.reconnecting) {
      el.className = 'feed-status warn';
      el.textContent = t('board.stream_lost');
      el.title = '';
    } else {
      el.className = `feed-status ok${fallback ? ' fallback' : ''}`;
      el.textContent = lastOk ? `${t('board.updated', { time: fmtClock(lastOk) })} · ${mode}` : '';
      el.title = '';
    }
    const s = $('sound');
    s.textContent = soundEnabled() ? t('board.sound.on') : t('board.sound.off');
    s.classList.toggle('on', soundEnabled());
  }

  // ---- actions ----------------------------------------------------------

  async function run(kind, alarms) {
    const ids = alarms.map((a) => String(a.id));
    let n = 0;
    if (kind === 'ack') n = await acknowledge(ids);
    else if (kind === 'shelve') n = await shelve(alarms);
    else if (kind === 'unshelve') n = await unshelve(ids);
    else if (kind === 'reset') n = await reset(ids);
    if (n) { for (const id of ids) selected.delete(id); feed.refresh(); render(); }
  }

  tbody.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const a = byId.get(b.dataset.id);
    if (a) run(b.dataset.act, [a]);
  });
  tbody.addEventListener('change', (e) => {
    const cb = e.target.closest('input[type=checkbox][data-id]');
    if (!cb) return;
    if (cb.checked) selected.add(cb.dataset.id); else selected.delete(cb.dataset.id);
    render();
  });
  $('sel-all').addEventListener('change', (e) => {
    const ids = visible().slice(0, MAX_ROWS).filter(actionable).map((a) => String(a.id));
    selected.clear();
    if (e.target.checked) ids.forEach((id) => selected.add(id));
    render();
  });
  $('bulk-ack').addEventListener('click', () => run('ack', selectedAlarms().filter(isAckable)));
  $('bulk-shelve').addEventListener('click', () => run('shelve', selectedAlarms().filter(isShelvable)));
  $('bulk-incident').addEventListener('click', async () => {
    const id = await newIncidentDialog({ alarms: selectedAlarms() });
    if (id) location.hash = href(['incidents', id]);
  });
  $('sound').addEventListener('click', () => {
    setSoundEnabled(!soundEnabled());
    if (soundEnabled()) { beep(); toast(t('board.sound.on'), 'info', 2000); }
    renderStatus();
  });
  $('tiles').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-state]');
    if (!b) return;
    const next = f.state === b.dataset.state ? 'open' : b.dataset.state;
    $('f-state').value = next;
    onFilter('state', next, (f.state === 'all') !== (next === 'all'));
  });

  // Unacknowledged dots blink together (one timer, no per-row animation restarts).
  const wrap = $('wrap');
  const blink = setInterval(() => wrap.classList.toggle('blink-off'), 600);
  const offNames = onNames(() => { fillEnterprises(); fillHazards(); render(); });

  loadEnterprises().then((list) => { enterprises = list; fillEnterprises(); }).catch(reportError);
  fillEnterprises();
  loadHazardOptions();
  syncUrl();
  startFeed();
  render();

  return () => {
    disposed = true;
    if (feed) feed.stop();
    clearInterval(blink);
    clearTimeout(highlightTimer);
    offNames();
    document.title = 'hazmon';
  };
}
