// An alarm's event log (GET /api/v1/alarms/{id}/events): every change, who, when, why;
// and its notifications (GET /api/v1/alarms/{id}/deliveries): who was told, how, with what result.

import { endpoints } from './api.js';
import { t, tCode } from './i18n.js';
import { html, raw, fmtTime, fmtNum, href } from './ui.js';
import { levelBadge } from './enterprises.js';
import { peopleTable, plansTable, resourcesTable, recordFlags, colorBadge, wStateBadge, incStatusBadge } from './response.js';

const cache = new Map();   // alarm id -> last rendered HTML
const ctxCache = new Map();  // alarm id -> last rendered context HTML

/** Fill `el` with the event log of an alarm (the last one shown stays until the new one is in). */
export async function eventLog(el, id) {
  const ctxBox = () => html`<div class="alarm-ctx" data-ctx="${id}">${raw(ctxCache.get(id) || '')}</div>`.__raw;
  if (cache.has(id)) el.innerHTML = cache.get(id) + ctxBox();
  const [ev, dl] = await Promise.allSettled([endpoints.alarmEvents(id), endpoints.alarmDeliveries(id)]);
  if (ev.status === 'rejected') {
    if (el.isConnected) el.innerHTML = html`<div class="err">${ev.reason.message || String(ev.reason)}</div>`.__raw;
    return;
  }
  const items = (ev.value && ev.value.items) || [];
  // Deliveries: absent on a server without notifications (404), hidden when refused.
  const deliveries = dl.status === 'fulfilled' ? (dl.value && dl.value.items) || [] : null;
  const out = (items.length ? html`
    <table class="grid log-table">
      <thead><tr><th class="c-time">${t('log.at')}</th><th>${t('log.action')}</th><th>${t('log.change')}</th>
        <th>${t('log.actor')}</th><th class="num">${t('col.value')}</th><th>${t('log.comment')}</th></tr></thead>
      <tbody>${items.map((e) => html`<tr>
        <td class="c-time">${fmtTime(e.reading_ts || e.at)}</td>
        <td>${tCode('action', e.action)}</td>
        <td>${e.from_state ? tCode('state', e.from_state) : '∅'} → ${tCode('state', e.to_state)}</td>
        <td>${e.actor === 'engine' ? t('log.engine') : e.actor === 'system' ? t('log.system') : e.actor}</td>
        <td class="num">${fmtNum(e.value)}</td>
        <td>${e.comment || ''}</td>
      </tr>`)}</tbody>
    </table>` : html`<div class="muted">${t('log.empty')}</div>`).__raw
    + (deliveries && deliveries.length ? html`
    <h4 class="log-sub">${t('log.deliveries')}</h4>
    <table class="grid log-table">
      <thead><tr><th class="c-time">${t('log.at')}</th><th>${t('log.channel')}</th><th>${t('log.reason')}</th>
        <th class="num">${t('log.tier')}</th><th class="num">${t('log.attempt')}</th><th>${t('log.status')}</th><th>${t('log.error')}</th></tr></thead>
      <tbody>${deliveries.map((d) => html`<tr class="dl-${d.status}">
        <td class="c-time">${fmtTime(d.at)}</td>
        <td>${d.channel} <span class="code">${d.channel_kind}</span></td>
        <td>${tCode('dreason', d.reason)}${d.alarm_count > 1 ? html` <span class="muted">(${t('log.grouped', { n: d.alarm_count })})</span>` : ''}</td>
        <td class="num">${d.tier ?? ''}</td>
        <td class="num">${d.attempt}</td>
        <td><span class="badge dl dl-${d.status}">${tCode('dstatus', d.status)}</span>${d.http_status ? html` <span class="code">HTTP ${d.http_status}</span>` : ''}</td>
        <td>${d.error || ''}</td>
      </tr>`)}</tbody>
    </table>`.__raw : '');
  cache.set(id, out);
  if (el.isConnected) {
    el.innerHTML = out + ctxBox();
    alarmContext(el.querySelector('.alarm-ctx'), id);
  }
}

/** The alarm's place (GET /api/v1/alarms/{id}/context): hazard source card, responsible
 *  people, plans, nearest rescue resources, the open warning and incidents there. */
export async function alarmContext(el, id) {
  let c;
  try { c = await endpoints.alarmContext(id); } catch { return; }   // older server: nothing shown
  const hs = c.hazard_source;
  const a = c.alarm || {};
  const out = html`
    <h4 class="log-sub">${t('ctx.title')}</h4>
    <div class="ctx-grid">
      <div class="ctx-card">
        ${hs ? html`<div class="hs-title">${levelBadge(hs.level)} <a href="${href(['hazard', hs.enterprise, hs.code])}">${hs.name || hs.code}</a> <span class="code">${hs.code}</span></div>
          <div class="muted small">${hs.enterprise_name || hs.enterprise} · ${tCode('unit_type', hs.unit_type)}${hs.lat !== null && hs.lat !== undefined ? ` · ${fmtNum(hs.lat)}, ${fmtNum(hs.lon)}` : ''}</div>
          <div class="hs-flags">${recordFlags(hs.flags)}</div>` : html`<div class="muted">${t('ctx.no_source')} (${a.enterprise || ''})</div>`}
        ${c.warning ? html`<div><a href="${href(['warnings'], { id: c.warning.id })}">${t('wr.title')}</a>: ${colorBadge(c.warning.color)} ${wStateBadge(c.warning.state)}</div>` : ''}
        ${(c.incidents || []).map((i) => html`<div><a href="${href(['incidents', i.id])}">${t('inc.title')} #${i.id}</a> ${i.title} ${incStatusBadge(i.status)}</div>`)}
      </div>
      ${hs ? html`<div>${peopleTable(hs.responsibles)}</div>` : ''}
    </div>
    ${hs ? html`<div class="ctx-grid"><div>${plansTable(hs.plans)}</div><div>${resourcesTable(c.nearby_resources)}</div></div>` : ''}`.__raw;
  ctxCache.set(id, out);
  if (el.isConnected) el.innerHTML = out;
}
