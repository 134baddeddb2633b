// Hazard source page (重大危险源): grading (level, R, S, α), chemicals, responsible
// people, points with their latest values, open alarms, and the maintenance mode.

import { endpoints } from './api.js';
import { t, tCode } from './i18n.js';
import { html, raw, fmtTime, fmtNum, href, reportError, toast, askMode } from './ui.js';
import {
  ANNUNCIATING, compareAlarms, isAckable, isUnacked, isShelvable, isUnshelvable, isResettable, prioClass,
  stateBadge, prioBadge, acknowledge, shelve, unshelve, reset,
} from './alarms.js';
import { levelBadge } from './enterprises.js';
import { enterpriseName, loadEnterprises, loadHazardSources } from './names.js';

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
      <div class="panel">
        <div class="panel-head"><h2>${t('ent.points')}</h2><span class="muted" id="point-count"></span></div>
        <div id="points"><div class="muted pad">${t('point.loading')}</div></div>
      </div>
    </section>`.__raw;
  const $ = (id) => root.querySelector('#' + id);
  document.title = `${code} · hazmon`;

  loadEnterprises().then(() => {
    const n = enterpriseName(enterprise);
    if (n && !disposed) $('crumb-ent').textContent = `${n} (${enterprise})`;
  }).catch(() => {});

  async function refresh(first = false) {
    clearTimeout(timer);
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
    renderPoints();
    renderAlarms();
  }

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
    const people = record && record.responsibles;
    if (!people) { $('people').innerHTML = html`<div class="muted pad">—</div>`.__raw; return; }
    $('people').innerHTML = html`
      <table class="grid">
        <tbody>${['principal', 'technical', 'operations'].map((role) => {
          const p = people[role];
          return html`<tr><th>${t('hs.role.' + role)}</th>
            <td>${p ? p.name : html`<span class="err">${t('hs.not_named')}</span>`}</td>
            <td class="code">${p ? p.phone : ''}</td><td class="muted">${p && p.position ? p.position : ''}</td></tr>`;
        })}</tbody>
      </table>`.__raw;
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
