// Shared pieces of the response pages (risk warnings, incidents, rescue resources, hazard
// records): colour badges, who-am-I (for the actions a role may take), deadlines, resources.

import { endpoints } from './api.js';
import { t, tCode } from './i18n.js';
import { html, fmtTime, fmtNum, fmtDuration } from './ui.js';

export const COLORS = ['red', 'orange', 'yellow', 'blue'];
export const WARNING_STATES = ['issued', 'acknowledged', 'feedback', 'cleared'];
export const INCIDENT_STATUSES = ['open', 'responding', 'closed'];
export const DISPATCH_STATUSES = ['requested', 'en_route', 'on_scene', 'returned', 'cancelled'];

// Who does which step of a warning's loop (the server checks; this only hides buttons).
const STEP_ROLES = { acknowledge: ['admin', 'enterprise'], feedback: ['admin', 'enterprise'], clear: ['admin', 'duty_officer'] };
const DISPATCH_ROLES = ['admin', 'duty_officer', 'dispatcher'];

let mePromise = null;
/** The signed-in token's name, role and scope (cached for the page's life). */
export function whoAmI() {
  if (!mePromise) mePromise = endpoints.me().catch((err) => { mePromise = null; throw err; });
  return mePromise;
}
export function mayStep(me, step) { return !!me && (STEP_ROLES[step] || []).includes(me.role); }
export function mayDispatch(me) { return !!me && DISPATCH_ROLES.includes(me.role); }

export function colorBadge(color, extra = '') {
  if (!color) return html`<span class="badge wc wc-none">${t('wc.none')}</span>`;
  return html`<span class="badge wc wc-${color}${extra}" data-color="${color}">${tCode('wc', color)}</span>`;
}
export function wStateBadge(state) {
  return html`<span class="badge wst wst-${state}">${tCode('wst', state)}</span>`;
}
export function incStatusBadge(status) {
  return html`<span class="badge ist ist-${status}">${tCode('ist', status)}</span>`;
}
export function dispatchBadge(status) {
  return html`<span class="badge dst dst-${status}">${tCode('dst', status)}</span>`;
}

export function actorName(a) {
  if (a === 'system') return t('log.system');
  if (a === 'engine') return t('log.engine');
  if (typeof a === 'string' && a.startsWith('rule:')) return `${t('inc.by_rule')} ${tCode('rule', a.slice(5))}`;
  return a || '';
}

/** "in 12 min" / "overdue 5 min" for a due instant, with a class for the colour. */
export function dueText(dueAt, now = Date.now()) {
  if (!dueAt) return { text: '', cls: '' };
  const s = (new Date(dueAt).getTime() - now) / 1000;
  if (s <= 0) return { text: t('due.over', { d: fmtDuration(Math.max(60, -s)) }), cls: 'overdue' };
  return { text: t('due.left', { d: fmtDuration(Math.max(60, s)) }), cls: s < 600 ? 'soon' : '' };
}

/** A countdown "mm:ss" / "h:mm:ss", negative past due. */
export function countdown(remainingS) {
  const neg = remainingS < 0;
  let s = Math.floor(Math.abs(remainingS));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const p = (n) => String(n).padStart(2, '0');
  return `${neg ? '−' : ''}${h ? h + ':' : ''}${p(m)}:${p(s)}`;
}

export function km(v) {
  return v === null || v === undefined ? '—' : `${fmtNum(Number(v).toFixed(Number(v) < 10 ? 2 : 1))} km`;
}

/** A table of rescue resources (nearest first when they carry distance_km). */
export function resourcesTable(items, { distance = true, actions = null } = {}) {
  if (!items || !items.length) return html`<div class="muted pad">${t('res.none')}</div>`;
  return html`
    <table class="grid res-table">
      <thead><tr>${distance ? html`<th class="num">${t('res.distance')}</th>` : ''}<th>${t('res.kind')}</th><th>${t('res.name')}</th>
        <th class="num">${t('res.quantity')}</th><th>${t('res.contact')}</th><th>${t('res.owner')}</th>
        ${distance ? '' : html`<th class="num">${t('res.coords')}</th><th>${t('res.available')}</th>`}${actions ? html`<th></th>` : ''}</tr></thead>
      <tbody>${items.map((r) => html`<tr data-res="${r.id}" class="${r.available === false ? 'muted' : ''}">
        ${distance ? html`<td class="num strong">${km(r.distance_km)}</td>` : ''}
        <td>${tCode('rkind', r.kind)}</td>
        <td>${r.name}${r.description ? html`<div class="sub muted">${r.description}</div>` : ''}</td>
        <td class="num">${r.quantity === null || r.quantity === undefined ? '' : `${fmtNum(r.quantity)} ${r.unit || ''}`}</td>
        <td>${r.contact_name || ''} <span class="code">${r.contact_phone || ''}</span></td>
        <td>${r.enterprise || html`<span class="muted">${t('res.public')}</span>`}</td>
        ${distance ? '' : html`<td class="num code">${fmtNum(r.lat)}, ${fmtNum(r.lon)}</td><td>${r.available === false ? t('res.unavailable') : t('res.yes')}</td>`}
        ${actions ? html`<td class="c-act">${actions(r)}</td>` : ''}
      </tr>`)}</tbody>
    </table>`;
}

/** The responsible people of a hazard record (principal / technical / operations). */
export function peopleTable(people) {
  if (!people) return html`<div class="muted pad">—</div>`;
  return html`
    <table class="grid people">
      <tbody>${['principal', 'technical', 'operations'].map((role) => {
        const p = people[role];
        return html`<tr><th>${t('hs.role.' + role)}</th>
          <td>${p ? p.name : html`<span class="err">${t('hs.not_named')}</span>`}</td>
          <td class="code phone">${p ? p.phone : ''}</td><td class="muted">${p && p.position ? p.position : ''}</td></tr>`;
      })}</tbody>
    </table>`;
}

/** Emergency plans and on-site procedures with their drill flags. */
export function plansTable(plans, docHref) {
  if (!plans || !plans.length) return html`<div class="muted pad">${t('rec.no_plans')}</div>`;
  return html`
    <table class="grid plans">
      <thead><tr><th>${t('rec.plan_kind')}</th><th>${t('rec.plan_title')}</th><th>${t('rec.version')}</th>
        <th>${t('rec.last_drill')}</th><th>${t('rec.next_drill')}</th><th>${t('rec.document')}</th></tr></thead>
      <tbody>${plans.map((p) => html`<tr class="${p.drill_overdue ? 'overdue-row' : ''}">
        <td>${tCode('plan', p.kind)}</td><td>${p.title}</td><td>${p.version || ''}</td>
        <td>${p.last_drill_on || html`<span class="muted">${t('rec.never')}</span>`}</td>
        <td>${p.next_drill_on || ''} ${p.drill_overdue ? html`<span class="flag flag-red">${t('rec.drill_overdue')}</span>` : ''}</td>
        <td>${p.doc_name && docHref ? html`<a href="#" data-doc="${p.id}">${p.doc_name}</a>` : ''}${p.link ? html` <a href="${p.link}" target="_blank" rel="noopener noreferrer">${t('rec.link')}</a>` : ''}</td>
      </tr>`)}</tbody>
    </table>`;
}

/** Flags of a hazard record as small labels. */
export function recordFlags(flags) {
  if (!flags) return '';
  return html`${flags.reidentification_due ? html`<span class="flag flag-red">${t('hs.flag.reidentify')}</span>` : ''}${flags.drill_overdue ? html`<span class="flag flag-red">${t('hs.flag.drill')}</span>` : ''}${(flags.missing_plans || []).length ? html`<span class="flag">${t('hs.flag.plans')}</span>` : ''}${(flags.missing_responsibles || []).length ? html`<span class="flag">${t('hs.flag.people')}</span>` : ''}`;
}

export { fmtTime };
