// Shift handover (交接班): what the shift raised, acknowledged, left open, shelved
// and suppressed (GET /api/v1/reports/shift-handover), exportable as CSV and
// printable (a light, paper layout with signature lines).

import { endpoints, download } from './api.js';
import { t, tCode } from './i18n.js';
import {
  html, fmtTime, href, reportError, toast, toLocalInput, fromLocalInput, isoLocal,
  fmtDuration,
} from './ui.js';
import { prioBadge, stateBadge } from './alarms.js';
import { loadEnterprises, enterpriseName } from './names.js';

const SHIFT_MS = 8 * 3600e3;
const SECTIONS = ['raised', 'acknowledged', 'still_open', 'shelved', 'suppressed'];

/** The current one of three 8-hour shifts (00–08, 08–16, 16–24 local time). */
function currentShift(now = new Date()) {
  const start = new Date(now);
  start.setMinutes(0, 0, 0);
  start.setHours(Math.floor(now.getHours() / 8) * 8);
  return { start, end: new Date(start.getTime() + SHIFT_MS) };
}

export function mountHandover(root, query) {
  const parse = (v) => { const d = v ? new Date(v) : null; return d && !Number.isNaN(d.getTime()) ? d : null; };
  let end = parse(query.end) || new Date();
  let start = parse(query.start) || new Date(end.getTime() - SHIFT_MS);
  let enterprise = query.enterprise || '';
  let data = null;
  let disposed = false;
  let runId = 0;
  let me = null;

  root.innerHTML = html`
    <section class="handover page">
      <div class="toolbar no-print">
        <h1>${t('ho.title')}</h1>
        <label>${t('ho.start')}<input type="datetime-local" id="start"></label>
        <label>${t('ho.end')}<input type="datetime-local" id="end"></label>
        <div class="seg">
          <button class="btn" type="button" id="last8">${t('ho.last8')}</button>
          <button class="btn" type="button" id="this-shift">${t('ho.this_shift')}</button>
          <button class="btn" type="button" id="prev-shift">${t('ho.prev_shift')}</button>
        </div>
        <label>${t('filter.enterprise')}<select id="enterprise"><option value="">${t('filter.all')}</option></select></label>
        <button class="btn btn-primary" type="button" id="go">${t('ho.generate')}</button>
        <span class="spacer"></span>
        <button class="btn" type="button" id="csv">${t('ho.csv')}</button>
        <button class="btn" type="button" id="print">${t('ho.print')}</button>
      </div>
      <div class="print-only print-head" id="print-head"></div>
      <div class="ho-range" id="range"></div>
      <div class="kpis" id="summary"></div>
      <div id="sections"><div class="muted pad">${t('point.loading')}</div></div>
      <div class="print-only signatures">
        <span>${t('ho.sign.off')}：________________</span>
        <span>${t('ho.sign.on')}：________________</span>
        <span>${t('ho.sign.time')}：________________</span>
      </div>
    </section>`.__raw;
  const $ = (id) => root.querySelector('#' + id);
  document.title = `${t('ho.title')} · hazmon`;

  function setInputs() {
    $('start').value = toLocalInput(start);
    $('end').value = toLocalInput(end);
    $('enterprise').value = enterprise;
  }
  function syncUrl() {
    const h = href(['handover'], { start: isoLocal(start), end: isoLocal(end), enterprise });
    if (location.hash !== h) history.replaceState(null, '', h);
  }
  function readInputs() {
    // The inputs show minutes: a value left as shown keeps its exact time.
    const s = $('start').value === toLocalInput(start) ? start : fromLocalInput($('start').value);
    const e = $('end').value === toLocalInput(end) ? end : fromLocalInput($('end').value);
    if (!s || !e || e <= s) { toast(t('rep.bad_range'), 'error'); return false; }
    start = s; end = e;
    enterprise = $('enterprise').value;
    return true;
  }

  $('last8').addEventListener('click', () => { end = new Date(); start = new Date(end.getTime() - SHIFT_MS); setInputs(); load(); });
  $('this-shift').addEventListener('click', () => { ({ start, end } = currentShift()); setInputs(); load(); });
  $('prev-shift').addEventListener('click', () => {
    const cur = currentShift();
    start = new Date(cur.start.getTime() - SHIFT_MS); end = cur.start;
    setInputs(); load();
  });
  $('go').addEventListener('click', () => { if (readInputs()) load(); });
  $('enterprise').addEventListener('change', () => { if (readInputs()) load(); });
  $('csv').addEventListener('click', async () => {
    if (!readInputs()) return;
    try {
      const name = await download('/api/v1/reports/shift-handover', {
        start: isoLocal(start), end: isoLocal(end), enterprise: enterprise || undefined, format: 'csv',
      }, 'shift-handover.csv');
      toast(t('rep.downloaded', { name }), 'ok');
    } catch (err) { reportError(err); }
  });
  $('print').addEventListener('click', () => window.print());

  loadEnterprises().then((list) => {
    if (disposed) return;
    const sel = $('enterprise');
    sel.innerHTML = html`<option value="">${t('filter.all')}</option>${list.map((e) => html`<option value="${e.code}">${e.name && e.name !== e.code ? `${e.name} (${e.code})` : e.code}</option>`)}`.__raw;
    sel.value = enterprise;
  }).catch(reportError);
  endpoints.me().then((m) => { me = m; renderPrintHead(); }).catch(() => {});

  async function load() {
    const id = ++runId;
    syncUrl();
    $('sections').classList.add('loading');
    try {
      const d = await endpoints.shiftHandover({ start: isoLocal(start), end: isoLocal(end), enterprise: enterprise || undefined });
      if (id !== runId || disposed) return;
      data = d;
      render();
    } catch (err) {
      if (id !== runId || disposed) return;
      reportError(err);
      $('sections').innerHTML = html`<div class="err pad">${err.message || String(err)}</div>`.__raw;
    } finally {
      $('sections').classList.remove('loading');
    }
  }

  function renderPrintHead() {
    const ent = enterprise ? `${enterpriseName(enterprise) || enterprise} (${enterprise})` : t('filter.all');
    $('print-head').innerHTML = html`
      <h1>${t('ho.print_title')}</h1>
      <div>${t('ho.period')}: ${fmtTime(start)} – ${fmtTime(end)} · ${t('filter.enterprise')}: ${ent}</div>
      <div>${t('ho.printed', { time: fmtTime(new Date()), by: me ? me.name : '' })}</div>`.__raw;
  }

  function render() {
    renderPrintHead();
    const s = data.summary;
    const ent = enterprise ? `${enterpriseName(enterprise) || enterprise}` : t('filter.all');
    $('range').innerHTML = html`<span>${fmtTime(start)} – ${fmtTime(end)}</span> <span class="muted">(${fmtDuration((end - start) / 1000)}) · ${ent}</span>`.__raw;
    const tile = (key, n, cls = '') => html`<button type="button" class="kpi ${cls}" data-jump="${key}"><span class="n">${n}</span><span class="l">${t('ho.sec.' + key)}</span></button>`;
    $('summary').innerHTML = html`
      ${tile('raised', s.raised, s.raised ? 'warn' : '')}
      <div class="kpi"><span class="n">${s.activations}</span><span class="l">${t('ho.activations')}</span></div>
      ${tile('acknowledged', s.acknowledged, 'ok')}
      ${tile('still_open', s.still_open, s.still_open ? 'warn' : 'ok')}
      <div class="kpi${s.unacknowledged ? ' alert' : ''}"><span class="n">${s.unacknowledged}</span><span class="l">${t('ho.unacked')}</span></div>
      ${tile('shelved', s.shelved)}
      ${tile('suppressed', s.suppressed)}`.__raw;
    $('sections').innerHTML = SECTIONS.map((k) => section(k, data[k], s[k])).join('');
  }

  const alarmCells = (a) => html`
    <td>${enterpriseName(a.enterprise) || a.enterprise_name || a.enterprise}</td>
    <td>${a.hazard_source ? html`<a href="${href(['hazard', a.enterprise, a.hazard_source])}">${a.hazard_source_name || a.hazard_source}</a>` : ''}</td>
    <td>${a.tag ? html`<a class="tag" href="${href(['point', a.enterprise, a.tag])}">${a.tag}</a>${a.point_name ? html` <span class="muted">${a.point_name}</span>` : ''}` : t('board.gateway', { gw: a.gateway || '' })}</td>
    <td><span class="cond">${a.condition}</span></td>
    <td>${prioBadge(a.priority)}</td>`;
  const alarmHead = () => html`<th>${t('col.enterprise')}</th><th>${t('col.hazard')}</th><th>${t('col.tag')}</th><th>${t('col.condition')}</th><th>${t('col.priority')}</th>`;
  const endedText = (r) => (r.ended_at
    ? `${fmtTime(r.ended_at)} · ${tCode('action', r.ended_action)}${r.ended_by && r.ended_by !== 'system' && r.ended_by !== 'engine' ? ` (${r.ended_by})` : ''}`
    : t('ho.still'));
  const st = (s) => (s ? stateBadge(s) : '');

  function section(key, rows, total) {
    const head = {
      raised: html`${alarmHead()}<th class="c-time">${t('ho.first_at')}</th><th class="num">${t('ho.times')}</th><th>${t('ho.state_at_end')}</th>`,
      acknowledged: html`${alarmHead()}<th class="c-time">${t('col.acked')}</th><th>${t('col.acked_by')}</th><th class="num">${t('ho.response')}</th><th>${t('log.comment')}</th>`,
      still_open: html`${alarmHead()}<th>${t('col.state')}</th><th class="c-time">${t('ho.active_since')}</th><th>${t('ho.carried')}</th>`,
      shelved: html`${alarmHead()}<th class="c-time">${t('ho.shelved_at')}</th><th>${t('ho.by')}</th><th>${t('shelve.reason')}</th><th>${t('shelve.duration')}</th><th>${t('ho.ended')}</th>`,
      suppressed: html`${alarmHead()}<th class="c-time">${t('ho.at')}</th><th>${t('log.action')}</th><th>${t('ho.by')}</th><th>${t('mode.reason')}</th><th>${t('ho.ended')}</th>`,
    }[key];
    const row = {
      raised: (r) => html`<td class="c-time">${fmtTime(r.first_at)}</td><td class="num">${r.activations}${r.masked ? html` <span class="muted" title="${t('ho.masked')}">(${r.masked})</span>` : ''}</td><td>${st(r.state_at_end)}</td>`,
      acknowledged: (r) => html`<td class="c-time">${fmtTime(r.acked_at)}</td><td>${r.acked_by}</td><td class="num">${r.response_s === null ? '' : fmtDuration(r.response_s)}</td><td>${r.comment || ''}</td>`,
      still_open: (r) => html`<td>${st(r.state)}</td><td class="c-time">${fmtTime(r.active_since)}</td><td>${r.carried_over ? t('ho.yes') : ''}</td>`,
      shelved: (r) => html`<td class="c-time">${fmtTime(r.at)}</td><td>${r.actor}</td><td>${r.reason || ''}</td><td>${r.duration_s ? fmtDuration(r.duration_s) : ''}${r.until ? html` <span class="muted">→ ${fmtTime(r.until).slice(5, 16)}</span>` : ''}</td><td>${endedText(r)}</td>`,
      suppressed: (r) => html`<td class="c-time">${fmtTime(r.at)}</td><td>${tCode('action', r.action)} ${st(r.state)}</td><td>${r.actor === 'engine' ? t('log.engine') : r.actor}</td><td>${r.reason || ''}</td><td>${endedText(r)}</td>`,
    }[key];
    const rowClass = (r) => {
      const s = key === 'still_open' ? r.state : r.state_at_end;
      return `prio-${r.priority}${s === 'UNACK_ACTIVE' || s === 'RTN_UNACK' ? ' unack' : ''}`;
    };
    return html`
      <div class="panel ho-section" id="ho-${key}" data-section="${key}">
        <div class="panel-head"><h2>${t('ho.sec.' + key)}</h2><span class="muted">${t('hs.count', { n: total })}${rows.length < total ? ' · ' + t('ho.cut', { n: rows.length }) : ''}</span></div>
        ${rows.length ? html`<table class="alarms compact ho-table">
          <thead><tr>${head}</tr></thead>
          <tbody>${rows.map((r) => html`<tr class="${rowClass(r)}">${alarmCells(r)}${row(r)}</tr>`)}</tbody>
        </table>` : html`<div class="muted pad">${t('ho.none')}</div>`}
      </div>`.__raw;
  }

  $('summary').addEventListener('click', (e) => {
    const a = e.target.closest('[data-jump]');
    if (!a) return;
    const el = $('ho-' + a.dataset.jump);
    if (el) el.scrollIntoView({ behavior: 'smooth', block: 'start' });
  });

  setInputs();
  load();
  return () => { disposed = true; runId++; };
}

