// Hazard source page (重大危险源): grading (level, R, S, α), chemicals, responsible
// people, points with their latest values, open alarms, and the maintenance mode.

import { endpoints, openBlob } from './api.js';
import { t, tCode } from './i18n.js';
import { html, raw, fmtTime, fmtNum, href, reportError, toast, askMode } from './ui.js';
import {
  ANNUNCIATING, compareAlarms, isAckable, isUnacked, isShelvable, isUnshelvable, isResettable, prioClass,
  stateBadge, prioBadge, acknowledge, shelve, unshelve, reset,
} from './alarms.js';
import { levelBadge } from './enterprises.js';
import { enterpriseName, loadEnterprises, loadHazardSources } from './names.js';
import { peopleTable, plansTable, resourcesTable, colorBadge, wStateBadge } from './response.js';

const REFRESH_MS = 10000;
const num = (v) => (v === null || v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));
const natural = new Intl.Collator('zh-CN', { numeric: true, sensitivity: 'base' });

export function modeBadge(mode) {
  const m = mode || 'normal';
  return html`<span class="badge mode mode-${m}">${tCode('mode', m)}</span>`;
}

export function mountHazard(root, query, enterprise, code) {
  let source = null;       // GET hazard-sources/{code} (always there)
  let record = null;       // GET .../record (mode, people, plans), when allowed
  let points = [];
  let alarms = [];
  let timer = null;
  let disposed = false;
  let failing = false;

  root.innerHTML = html`
    <section class="hazard page">
      <nav class="crumbs">
        <a href="#/alarms">${t('nav.alarms')}</a> ›
        <a href="#/enterprises?open=${encodeURIComponent(enterprise)}" id="crumb-ent">${enterprise}</a> ›
        <strong>${code}</strong>
      </nav>
      <div class="hs-head" id="head"><div class="muted">${t('point.loading')}</div></div>
      <div class="panel">
        <div class="panel-head"><h2>${t('hs.open_alarms')}</h2><span class="muted" id="alarm-count"></span>
          <span class="spacer"></span>
          <a class="btn btn-sm" href="${href(['alarms'], { enterprise, hazard_source: code })}">${t('hs.on_board')}</a></div>
        <div id="alarms"><div class="muted pad">${t('point.loading')}</div></div>
      </div>
      <div class="hs-grid">
        <div class="panel">
          <div class="panel-head"><h2>${t('ent.chemicals')}</h2></div>
          <div id="chems"></div>
        </div>
        <div class="panel">
          <div class="panel-head"><h2>${t('hs.people')}</h2></div>
          <div id="people"></div>
        </div>
      </div>
      <div class="hs-grid">
        <div class="panel">
          <div class="panel-head"><h2>${t('rec.plans')}</h2></div>
          <div id="plans"></div>
        </div>
        <div class="panel">
          <div class="panel-head"><h2>${t('rec.record')}</h2></div>
          <div id="record"></div>
        </div>
      </div>
      <div class="panel">
        <div class="panel-head"><h2>${t('ent.points')}</h2><span class="muted" id="point-count"></span></div>
        <div id="points"><div class="muted pad">${t('point.loading')}</div></div>
      </div>
      <div class="hs-grid">
        <div class="panel">
          <div class="panel-head"><h2>${t('rec.history')}</h2></div>
          <div id="history"></div>
        </div>
        <div class="panel">
          <div class="panel-head"><h2>${t('inc.nearby')}</h2><span class="spacer"></span><a class="btn btn-sm" href="#/resources">${t('nav.resources')}</a></div>
          <div id="nearby"></div>
        </div>
      </div>
    </section>`.__raw;
  const $ = (id) => root.querySelector('#' + id);
  document.title = `${code} · hazmon`;

  loadEnterprises().then(() => {
    const n = enterpriseName(enterprise);
    if (n && !disposed) $('crumb-ent').textContent = `${n} (${enterprise})`;
  }).catch(() => {});

  let history = null;
  let nearby = null;
  let warning = null;
  async function loadExtras() {
    const [h, n, w] = await Promise.allSettled([
      endpoints.gradingHistory(enterprise, code),
      endpoints.nearbyResources(enterprise, code, { limit: 8 }),
      endpoints.warnings({ enterprise, hazard_source: code, state: 'open', limit: 1 }),
    ]);
    if (disposed) return;
    history = h.status === 'fulfilled' ? h.value.items || [] : null;
    nearby = n.status === 'fulfilled' ? n.value.items || [] : null;
    warning = w.status === 'fulfilled' ? (w.value.items || [])[0] || null : null;
    renderExtras();
    renderHead();
  }

  async function refresh(first = false) {
    clearTimeout(timer);
    if (first) loadExtras();
    const [s, r, p, a] = await Promise.allSettled([
      first || !source ? endpoints.hazardSource(enterprise, code) : Promise.resolve(source),
      endpoints.hazardRecord(enterprise, code),
      endpoints.points(enterprise),
      endpoints.alarms({ enterprise, hazard_source: code, state: 'open' }),
    ]);
    if (disposed) return;
    if (s.status === 'rejected' && s.reason.status === 404) {
      reportError(s.reason);
      $('head').innerHTML = html`<div class="err">${t('hs.not_found')}: ${enterprise} / ${code}</div>`.__raw;
      for (const el of root.querySelectorAll('.panel, .hs-grid')) el.hidden = true;
      return;
    }
    let firstError = null;
    if (s.status === 'fulfilled') source = s.value; else firstError = s.reason;
    if (r.status === 'fulfilled') record = r.value;
    if (p.status === 'fulfilled') points = ((p.value && p.value.items) || []).filter((x) => x.hazard_source === code);
    else firstError = firstError || p.reason;
    if (a.status === 'fulfilled') alarms = ((a.value && a.value.items) || []).filter((x) => x.enterprise === enterprise);
    else firstError = firstError || a.reason;
    render();
    if (firstError && !failing) reportError(firstError);
    failing = !!firstError;
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function render() {
    renderHead();
    renderChems();
    renderPeople();
    renderPlans();
    renderRecord();
    renderPoints();
    renderAlarms();
  }

  function renderPlans() {
    $('plans').innerHTML = record ? plansTable(record.plans, true).__raw : html`<div class="muted pad">—</div>`.__raw;
  }

  function renderRecord() {
    if (!record) { $('record').innerHTML = html`<div class="muted pad">—</div>`.__raw; return; }
    const f = record.flags || {};
    const eq = record.equipment || [];
    $('record').innerHTML = html`
      <table class="grid rec-card"><tbody>
        <tr><th>${t('rec.coords')}</th><td class="code">${record.lat !== null && record.lat !== undefined ? `${fmtNum(record.lat)}, ${fmtNum(record.lon)}` : '—'}${record.lat !== null && record.lat !== undefined && !record.own_coordinates ? html` <span class="muted small">(${t('rec.ent_coords')})</span>` : ''}</td></tr>
        <tr><th>${t('rec.identified')}</th><td>${record.last_identified_on || html`<span class="err">${t('rec.never')}</span>`}</td></tr>
        <tr class="${f.reidentification_due ? 'overdue-row' : ''}"><th>${t('rec.reidentify_by')}</th><td>${f.reidentify_by || '—'} ${f.reidentification_due ? html`<span class="flag flag-red" id="reident-due">${t('hs.flag.reidentify')}</span>` : ''}</td></tr>
        <tr><th>${t('rec.graded_at')}</th><td>${fmtTime(record.graded_at)}</td></tr>
      </tbody></table>
      <h3 class="pad-x">${t('rec.equipment')}</h3>
      ${eq.length ? html`<table class="grid"><thead><tr><th>${t('res.name')}</th><th>${t('res.kind')}</th><th class="num">${t('res.quantity')}</th><th>${t('rec.location')}</th><th>${t('rec.checked')}</th></tr></thead>
        <tbody>${eq.map((e) => html`<tr><td>${e.name}</td><td>${e.kind || ''}</td><td class="num">${e.quantity === null || e.quantity === undefined ? '' : `${fmtNum(e.quantity)} ${e.unit || ''}`}</td><td>${e.location || ''}</td><td>${e.checked_on || ''}</td></tr>`)}</tbody></table>`
        : html`<div class="muted pad">${t('rec.no_equipment')}</div>`}`.__raw;
  }

  function renderExtras() {
    $('history').innerHTML = history === null ? html`<div class="muted pad">—</div>`.__raw : !history.length
      ? html`<div class="muted pad">${t('rec.no_history')}</div>`.__raw
      : html`<table class="grid"><thead><tr><th class="c-time">${t('log.at')}</th><th>${t('ent.level')}</th><th class="num">R</th><th class="num">S</th><th class="num">α</th><th>${t('log.actor')}</th><th>${t('rec.reason')}</th></tr></thead>
        <tbody>${[...history].reverse().map((g) => html`<tr><td class="c-time">${fmtTime(g.at)}</td><td>${levelBadge(g.level)}</td>
          <td class="num">${num(g.r) === null ? '' : fmtNum(Number(g.r).toFixed(2))}</td><td class="num">${num(g.s) === null ? '' : fmtNum(Number(g.s).toFixed(3))}</td>
          <td class="num">${fmtNum(g.alpha)}</td><td>${g.actor}</td><td>${g.reason || ''}</td></tr>`)}</tbody></table>`.__raw;
    $('nearby').innerHTML = nearby === null ? html`<div class="muted pad">—</div>`.__raw : resourcesTable(nearby).__raw;
  }

  root.addEventListener('click', (e) => {
    const d = e.target.closest('[data-doc]');
    if (!d) return;
    e.preventDefault();
    const w = window.open('', '_blank');
    openBlob(`/api/v1/enterprises/${encodeURIComponent(enterprise)}/hazard-sources/${encodeURIComponent(code)}/plans/${encodeURIComponent(d.dataset.doc)}/document`, null, w).catch(reportError);
  });

  function renderHead() {
    const h = source || {};
    const mode = record ? record.mode : null;
    const unack = alarms.filter(isUnacked);
    const worst = alarms.filter((a) => ANNUNCIATING.includes(a.state)).sort(compareAlarms)[0];
    const flags = (record && record.flags) || null;
    $('head').innerHTML = html`
      <div class="hs-card${worst ? ' prio-' + prioClass(worst.priority) : ''}">
        <div class="hs-title">${levelBadge(h.level)} <span class="hs-name">${h.name || code}</span> <span class="code">${code}</span></div>
        <div class="muted">${tCode('unit_type', h.unit_type)}${num(h.residents_500m) !== null ? ` · ${t('hs.residents', { n: h.residents_500m })}` : ''}</div>
        ${warning ? html`<div class="hs-warning"><a href="${href(['warnings'], { id: warning.id })}">${t('wr.title')}: ${colorBadge(warning.color)} ${wStateBadge(warning.state)}</a></div>` : ''}
        <div class="hs-mode">${t('hs.mode')}: ${mode ? modeBadge(mode) : html`<span class="muted">—</span>`}
          <button class="btn btn-sm" type="button" id="mode-btn" ${raw(record ? '' : 'disabled')}>${t('hs.change_mode')}</button></div>
        ${flags && (flags.reidentification_due || flags.drill_overdue || (flags.missing_plans || []).length || (flags.missing_responsibles || []).length)
          ? html`<div class="hs-flags">${flags.reidentification_due ? html`<span class="flag">${t('hs.flag.reidentify')}</span>` : ''}${flags.drill_overdue ? html`<span class="flag">${t('hs.flag.drill')}</span>` : ''}${(flags.missing_plans || []).length ? html`<span class="flag">${t('hs.flag.plans')}</span>` : ''}${(flags.missing_responsibles || []).length ? html`<span class="flag">${t('hs.flag.people')}</span>` : ''}</div>`
          : ''}
      </div>
      <div class="kpis">
        <div class="kpi"><span class="n">${num(h.r) === null ? '—' : fmtNum(Number(h.r).toFixed(2))}</span><span class="l">R ${t('hs.r')}</span></div>
        <div class="kpi"><span class="n">${num(h.s) === null ? '—' : fmtNum(Number(h.s).toFixed(3))}</span><span class="l">S = Σq/Q</span></div>
        <div class="kpi"><span class="n">${num(h.alpha) === null ? '—' : fmtNum(h.alpha)}</span><span class="l">α ${t('hs.alpha')}</span></div>
        <div class="kpi"><span class="n">${points.length}</span><span class="l">${t('ent.points')}</span></div>
        <div class="kpi${alarms.length ? ' warn' : ''}"><span class="n">${alarms.length}</span><span class="l">${t('hs.open_alarms')}</span></div>
        <div class="kpi${unack.length ? ' alert' : ''}"><span class="n">${unack.length}</span><span class="l">${t('hs.unacked')}</span></div>
      </div>`.__raw;
    const btn = $('mode-btn');
    if (btn) btn.addEventListener('click', changeMode);
  }

  async function changeMode() {
    const answer = await askMode({ title: t('hs.mode_title', { name: (source && source.name) || code }), current: record ? record.mode : 'normal' });
    if (!answer) return;
    try {
      const res = await endpoints.setHazardMode(enterprise, code, answer);
      toast(t('hs.mode_done', { mode: tCode('mode', answer.mode), n: res ? res.alarms_changed : 0 }), 'ok');
      refresh();
    } catch (err) {
      reportError(err);
    }
  }

  function renderChems() {
    const chems = (source && source.chemicals) || [];
    if (!chems.length) { $('chems').innerHTML = html`<div class="muted pad">${t('hs.no_chems')}</div>`.__raw; return; }
    $('chems').innerHTML = html`
      <table class="grid">
        <thead><tr><th>${t('ent.name')}</th><th>CAS</th><th class="num">q (t)</th><th class="num">Q (t)</th>
          <th class="num">q/Q</th><th class="num">β</th><th class="num">β·q/Q</th></tr></thead>
        <tbody>${chems.map((c) => html`<tr>
          <td>${c.name}</td><td class="code">${c.cas || ''}</td>
          <td class="num">${fmtNum(c.quantity_t)}</td><td class="num">${fmtNum(c.critical_t)}</td>
          <td class="num">${num(c.ratio) === null ? '' : fmtNum(Number(c.ratio).toFixed(3))}</td>
          <td class="num">${fmtNum(c.beta)}</td>
          <td class="num">${num(c.ratio) === null || num(c.beta) === null ? '' : fmtNum((c.ratio * c.beta).toFixed(3))}</td>
        </tr>`)}</tbody>
      </table>`.__raw;
  }

  function renderPeople() {
    $('people').innerHTML = peopleTable(record && record.responsibles).__raw;
  }

  function renderPoints() {
    $('point-count').textContent = t('hs.count', { n: points.length });
    if (!points.length) { $('points').innerHTML = html`<div class="muted pad">${t('ent.no_points')}</div>`.__raw; return; }
    const byTag = new Map();
    for (const a of alarms) if (a.tag) (byTag.get(a.tag) || byTag.set(a.tag, []).get(a.tag)).push(a);
    const lim = (v) => (num(v) === null ? '' : fmtNum(v));
    $('points').innerHTML = html`
      <table class="grid points">
        <thead><tr><th>${t('col.tag')}</th><th>${t('point.name')}</th><th>${t('point.kind')}</th>
          <th class="num">LOLO</th><th class="num">LO</th><th class="num">HI</th><th class="num">HIHI</th>
          <th class="num">${t('point.latest')}</th><th class="c-time"></th><th>${t('hs.mode')}</th><th>${t('col.state')}</th></tr></thead>
        <tbody>${[...points].sort((a, b) => natural.compare(a.tag, b.tag)).map((p) => {
          const mine = (byTag.get(p.tag) || []).sort(compareAlarms);
          const worst = mine[0];
          const latest = p.latest || null;
          return html`<tr class="${worst ? 'prio-' + prioClass(worst.priority) : ''}">
            <td><a class="tag" href="${href(['point', enterprise, p.tag])}">${p.tag}</a></td>
            <td>${p.name || ''}</td><td>${tCode('kind', p.kind)}</td>
            <td class="num">${lim(p.lolo)}</td><td class="num">${lim(p.lo)}</td><td class="num">${lim(p.hi)}</td><td class="num">${lim(p.hihi)}</td>
            <td class="num${latest && latest.quality === 'bad' ? ' bad-q' : ''}">${latest ? `${fmtNum(latest.value)} ${p.unit || ''}` : '—'}</td>
            <td class="c-time muted">${latest ? fmtTime(latest.ts) : ''}</td>
            <td>${p.in_service === false ? html`<span class="badge st st-OUT_OF_SERVICE">${t('point.out_of_service')}</span>` : (p.mode && p.mode !== 'normal' ? modeBadge(p.mode) : '')}</td>
            <td>${worst ? html`${isUnacked(worst) ? raw('<span class="dot"></span>') : ''}<span class="cond">${worst.condition}</span> ${stateBadge(worst.state, worst)}${mine.length > 1 ? ` +${mine.length - 1}` : ''}` : ''}</td>
          </tr>`;
        })}</tbody>
      </table>`.__raw;
  }

  function renderAlarms() {
    $('alarm-count').textContent = t('hs.count', { n: alarms.length });
    if (!alarms.length) { $('alarms').innerHTML = html`<div class="muted pad">${t('hs.no_alarms')}</div>`.__raw; return; }
    const btn = (act, id, label, cls = 'btn btn-sm') => html`<button class="${cls}" type="button" data-act="${act}" data-id="${id}">${label}</button>`;
    $('alarms').innerHTML = html`
      <table class="alarms compact">
        <thead><tr><th class="c-dot"></th><th class="c-time">${t('col.time')}</th><th>${t('col.tag')}</th><th>${t('col.condition')}</th>
          <th>${t('col.priority')}</th><th>${t('col.state')}</th><th class="num">${t('col.value')}</th><th class="num">${t('col.limit')}</th><th class="c-act">${t('col.action')}</th></tr></thead>
        <tbody>${[...alarms].sort(compareAlarms).map((a) => html`
          <tr class="prio-${prioClass(a.priority)}${isUnacked(a) ? ' unack' : ''}">
            <td class="c-dot">${isUnacked(a) ? raw('<span class="dot"></span>') : ''}</td>
            <td class="c-time">${fmtTime(a.activated_at)}</td>
            <td>${a.tag ? html`<a class="tag" href="${href(['point', enterprise, a.tag])}">${a.tag}</a>` : a.gateway || ''}</td>
            <td><span class="cond">${a.condition}</span></td>
            <td>${prioBadge(a.priority)}</td><td>${stateBadge(a.state, a)}</td>
            <td class="num">${fmtNum(a.value)}</td><td class="num">${fmtNum(a.limit)}</td>
            <td class="c-act"><span class="acts">
              ${isAckable(a) ? btn('ack', a.id, t('ack.one'), 'btn btn-ack') : ''}
              ${isShelvable(a) ? btn('shelve', a.id, t('shelve.one')) : ''}
              ${isUnshelvable(a) ? btn('unshelve', a.id, t('unshelve.one')) : ''}
              ${isResettable(a) ? btn('reset', a.id, t('reset.one')) : ''}
            </span></td>
          </tr>`)}</tbody>
      </table>`.__raw;
  }

  $('alarms').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const a = alarms.find((x) => String(x.id) === b.dataset.id);
    if (!a) return;
    let n = 0;
    if (b.dataset.act === 'ack') n = await acknowledge([a.id]);
    else if (b.dataset.act === 'shelve') n = await shelve([a]);
    else if (b.dataset.act === 'unshelve') n = await unshelve([a.id]);
    else if (b.dataset.act === 'reset') n = await reset([a.id]);
    if (n) refresh();
  });

  loadHazardSources(enterprise).catch(() => {});
  refresh(true);
  return () => { disposed = true; clearTimeout(timer); };
}
