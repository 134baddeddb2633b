// Enterprises: each with its major hazard sources (GB 18218-2018 level) and
// monitoring points, every point linking to its page. Details load when an
// enterprise is opened, so a county with many enterprises stays fast.

import { endpoints, limiter } from './api.js';
import { t, tCode } from './i18n.js';
import { html, raw, fmtTime, fmtNum, href, reportError } from './ui.js';
import { compareAlarms, isUnacked, prioClass, stateBadge } from './alarms.js';
import { loadEnterprises } from './names.js';

const AUTO_OPEN_MAX = 3;
const ALARM_REFRESH_MS = 15000;
const gate = limiter(3);   // "expand all" must not fire hundreds of requests at once

const natural = new Intl.Collator('zh-CN', { numeric: true, sensitivity: 'base' });
const num = (v) => (v === null || v === undefined || v === '' ? null : Number(v));

export function levelBadge(level) {
  const l = num(level);
  if (!l || l < 1 || l > 4) return html`<span class="badge lvl lvl-none">${t('ent.not_major')}</span>`;
  return html`<span class="badge lvl lvl-${l}">${t('level.' + l)}</span>`;
}

function chemTitle(c) {
  const parts = [];
  if (c.cas) parts.push(`CAS ${c.cas}`);
  if (num(c.quantity_t) !== null) parts.push(`q = ${fmtNum(c.quantity_t)} t`);
  if (num(c.critical_t) !== null) parts.push(`Q = ${fmtNum(c.critical_t)} t`);
  if (num(c.ratio) !== null) parts.push(`q/Q = ${fmtNum(Number(c.ratio).toFixed(3))}`);
  if (num(c.beta) !== null) parts.push(`β = ${fmtNum(c.beta)}`);
  return parts.join(' · ');
}

export function mountEnterprises(root, query) {
  let list = [];
  let openAlarms = [];
  let disposed = false;
  const loaded = new Map();     // code -> {hazards, points} once loaded
  const pending = new Set();    // codes being loaded
  let alarmTimer = null;

  root.innerHTML = html`
    <section class="ents">
      <div class="toolbar">
        <h1>${t('ent.title')}</h1>
        <input type="search" id="q" placeholder="${t('ent.search')}" aria-label="${t('ent.search')}">
        <span class="muted" id="count"></span>
        <span class="spacer"></span>
        <button class="btn" type="button" id="expand">${t('ent.expand_all')}</button>
        <button class="btn" type="button" id="collapse">${t('ent.collapse_all')}</button>
      </div>
      <div id="list"><div class="muted pad">${t('ent.loading')}</div></div>
    </section>`.__raw;
  const $ = (id) => root.querySelector('#' + id);

  function alarmsOf(code) { return openAlarms.filter((a) => a.enterprise === code); }

  function summaryAlarms(code) {
    const mine = alarmsOf(code);
    if (!mine.length) return html`<span class="muted">${t('ent.open_alarms')}: 0</span>`;
    const by = { high: 0, medium: 0, low: 0, none: 0 };
    let unack = null;             // the most urgent unacknowledged alarm, for the dot's colour
    for (const a of mine) {
      by[prioClass(a.priority)]++;
      if (isUnacked(a) && (!unack || compareAlarms(a, unack) < 0)) unack = a;
    }
    return html`<span class="alarm-sum${unack ? ' prio-' + prioClass(unack.priority) : ''}">${unack ? raw('<span class="dot"></span>') : ''}${t('ent.open_alarms')}: <b>${mine.length}</b>
      ${['high', 'medium', 'low'].filter((p) => by[p]).map((p) => html`<span class="badge pr pr-${p}">${tCode('prio', p)} ${by[p]}</span>`)}</span>`;
  }

  function renderList() {
    const q = $('q').value.trim().toLowerCase();
    const shown = list.filter((e) => !q || e.code.toLowerCase().includes(q) || String(e.name || '').toLowerCase().includes(q));
    $('count').textContent = t('ent.count', { n: list.length });
    if (!list.length) { $('list').innerHTML = html`<div class="muted pad">${t('ent.empty')}</div>`.__raw; return; }
    const openNow = new Set([...root.querySelectorAll('details.ent[open]')].map((d) => d.dataset.code));
    const first = !$('list').querySelector('details.ent');
    // A link to one enterprise opens just that one; a short list opens whole.
    if (first && query.open) openNow.add(query.open);
    else if (first && list.length <= AUTO_OPEN_MAX) list.forEach((e) => openNow.add(e.code));
    $('list').innerHTML = shown.map((e) => html`
      <details class="ent" data-code="${e.code}" ${raw(openNow.has(e.code) ? 'open' : '')}>
        <summary>
          <span class="ent-name">${e.name || e.code}</span>
          <span class="code">${e.code}</span>
          ${num(e.lat) !== null && num(e.lon) !== null ? html`<span class="muted">${t('ent.location')}: ${fmtNum(e.lat)}, ${fmtNum(e.lon)}</span>` : ''}
          <span class="spacer"></span>
          <span class="sum-alarms">${summaryAlarms(e.code)}</span>
        </summary>
        <div class="ent-body"><div class="muted pad">${t('ent.loading')}</div></div>
      </details>`.__raw).join('');
    for (const d of $('list').querySelectorAll('details.ent[open]')) loadDetails(d);
    if (first && query.open) {
      const d = $('list').querySelector(`details.ent[data-code="${CSS.escape(query.open)}"]`);
      if (d) d.scrollIntoView({ block: 'start' });
    }
  }

  async function loadDetails(d, force = false) {
    const code = d.dataset.code;
    const body = d.querySelector('.ent-body');
    if (loaded.has(code) && !force) { body.innerHTML = detailsHtml(code); return; }
    if (pending.has(code)) return;
    pending.add(code);
    const [h, p] = await gate(() => Promise.allSettled([endpoints.hazardSources(code), endpoints.points(code)]));
    pending.delete(code);
    if (disposed) return;
    if (h.status === 'rejected') reportError(h.reason);
    if (p.status === 'rejected' && !(h.status === 'rejected' && h.reason.status === p.reason.status)) reportError(p.reason);
    loaded.set(code, {
      hazards: h.status === 'fulfilled' ? (h.value && h.value.items) || [] : null,
      points: p.status === 'fulfilled' ? (p.value && p.value.items) || [] : null,
      error: h.status === 'rejected' ? h.reason.message : p.status === 'rejected' ? p.reason.message : '',
    });
    // The list may have been re-rendered meanwhile (search): fill the current element.
    const cur = $('list').querySelector(`details.ent[data-code="${CSS.escape(code)}"] .ent-body`);
    if (cur) cur.innerHTML = detailsHtml(code);
  }

  function detailsHtml(code) {
    const d = loaded.get(code);
    if (!d) return '';
    return html`
      <h3>${t('ent.hazards')}</h3>
      ${d.hazards === null ? html`<div class="err pad">${d.error}</div>` : hazardsTable(code, d.hazards)}
      <h3>${t('ent.points')}</h3>
      ${d.points === null ? html`<div class="err pad">${d.error}</div>` : pointsTable(code, d.points, d.hazards || [])}`.__raw;
  }

  function hazardsTable(code, items) {
    if (!items.length) return html`<div class="muted pad">${t('ent.no_hazards')}</div>`;
    const sorted = [...items].sort((a, b) => (num(a.level) || 9) - (num(b.level) || 9) || natural.compare(a.code, b.code));
    return html`
      <table class="grid">
        <thead><tr><th>${t('ent.level')}</th><th>${t('ent.code')}</th><th>${t('ent.name')}</th><th>${t('ent.unit_type')}</th>
          <th class="num">S</th><th class="num">R</th><th>${t('ent.chemicals')}</th></tr></thead>
        <tbody>${sorted.map((h) => html`<tr>
          <td>${levelBadge(h.level)}</td>
          <td class="code"><a href="${href(['hazard', code, h.code])}">${h.code}</a></td>
          <td><a href="${href(['hazard', code, h.code])}">${h.name || ''}</a></td>
          <td>${tCode('unit_type', h.unit_type)}</td>
          <td class="num">${num(h.s) === null ? '' : fmtNum(Number(h.s).toFixed(2))}</td>
          <td class="num">${num(h.r) === null ? '' : fmtNum(Number(h.r).toFixed(2))}</td>
          <td class="chems">${(h.chemicals || []).map((c) => html`<span class="chem" title="${chemTitle(c)}">${c.name}${c.cas ? raw(html` <span class="code">${c.cas}</span>`.__raw) : ''} ${num(c.quantity_t) === null ? '' : fmtNum(c.quantity_t) + ' t'}${num(c.critical_t) !== null ? ` / ${fmtNum(c.critical_t)} t` : ''}</span>`)}</td>
        </tr>`)}</tbody>
      </table>`;
  }

  function pointsTable(code, items, hazards) {
    if (!items.length) return html`<div class="muted pad">${t('ent.no_points')}</div>`;
    const hsName = new Map(hazards.map((h) => [h.code, h.name || h.code]));
    const byTag = new Map();
    for (const a of alarmsOf(code)) if (a.tag) (byTag.get(a.tag) || byTag.set(a.tag, []).get(a.tag)).push(a);
    const sorted = [...items].sort((a, b) => natural.compare(a.hazard_source || '', b.hazard_source || '') || natural.compare(a.tag, b.tag));
    const lim = (v) => (num(v) === null ? '' : fmtNum(v));
    return html`
      <table class="grid points">
        <thead><tr><th>${t('col.tag')}</th><th>${t('point.name')}</th><th>${t('point.kind')}</th><th>${t('point.hazard')}</th>
          <th class="num">${t('point.range')}</th><th class="num">LOLO</th><th class="num">LO</th><th class="num">HI</th><th class="num">HIHI</th>
          <th class="num">${t('point.latest')}</th><th class="c-time"></th><th>${t('col.state')}</th></tr></thead>
        <tbody>${sorted.map((p) => {
          const alarms = (byTag.get(p.tag) || []).sort(compareAlarms);
          const worst = alarms[0];
          const latest = p.latest || null;
          return html`<tr class="${worst ? 'prio-' + prioClass(worst.priority) : ''}">
            <td><a class="tag" href="${href(['point', code, p.tag])}">${p.tag}</a>${p.in_service === false ? html` <span class="badge st st-OUT_OF_SERVICE">${t('point.out_of_service')}</span>` : ''}</td>
            <td>${p.name || ''}</td>
            <td>${tCode('kind', p.kind)}</td>
            <td>${p.hazard_source ? (hsName.get(p.hazard_source) || p.hazard_source) : ''}</td>
            <td class="num">${num(p.range_low) === null && num(p.range_high) === null ? '' : `${lim(p.range_low)} … ${lim(p.range_high)}`}</td>
            <td class="num">${lim(p.lolo)}</td><td class="num">${lim(p.lo)}</td><td class="num">${lim(p.hi)}</td><td class="num">${lim(p.hihi)}</td>
            <td class="num${latest && latest.quality === 'bad' ? ' bad-q' : ''}">${latest ? `${fmtNum(latest.value)} ${p.unit || ''}` : '—'}</td>
            <td class="c-time muted">${latest ? fmtTime(latest.ts) : ''}</td>
            <td>${worst ? html`${isUnacked(worst) ? raw('<span class="dot"></span>') : ''}<span class="cond">${worst.condition}</span> ${stateBadge(worst.state)}${alarms.length > 1 ? ` +${alarms.length - 1}` : ''}` : ''}</td>
          </tr>`;
        })}</tbody>
      </table>`;
  }

  async function refreshAlarms() {
    clearTimeout(alarmTimer);
    try {
      const data = await endpoints.alarms({ state: 'open' });
      if (disposed) return;
      openAlarms = (data && data.items) || [];
      for (const d of root.querySelectorAll('details.ent')) {
        d.querySelector('.sum-alarms').innerHTML = summaryAlarms(d.dataset.code).__raw;
        if (d.open && loaded.has(d.dataset.code)) d.querySelector('.ent-body').innerHTML = detailsHtml(d.dataset.code);
      }
    } catch (err) {
      reportError(err);
    }
    if (!disposed) alarmTimer = setTimeout(refreshAlarms, ALARM_REFRESH_MS);
  }

  $('list').addEventListener('toggle', (e) => {
    const d = e.target;
    if (d.matches && d.matches('details.ent') && d.open) loadDetails(d);
  }, true);
  $('q').addEventListener('input', renderList);
  $('expand').addEventListener('click', () => root.querySelectorAll('details.ent').forEach((d) => { d.open = true; }));
  $('collapse').addEventListener('click', () => root.querySelectorAll('details.ent').forEach((d) => { d.open = false; }));

  loadEnterprises(true)
    .then((items) => {
      if (disposed) return;
      list = [...items].sort((a, b) => natural.compare(a.name || a.code, b.name || b.code));
      renderList();
    })
    .catch((err) => {
      reportError(err);
      if (!disposed) $('list').innerHTML = html`<div class="err pad">${err.message}</div>`.__raw;
    });
  refreshAlarms();
  document.title = `${t('ent.title')} · hazmon`;

  return () => {
    disposed = true;
    clearTimeout(alarmTimer);
  };
}
