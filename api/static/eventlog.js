// An alarm's event log (GET /api/v1/alarms/{id}/events): every change, who, when, why.

import { endpoints } from './api.js';
import { t, tCode } from './i18n.js';
import { html, fmtTime, fmtNum } from './ui.js';

const cache = new Map();   // alarm id -> last rendered HTML

/** Fill `el` with the event log of an alarm (the last one shown stays until the new one is in). */
export async function eventLog(el, id) {
  if (cache.has(id)) el.innerHTML = cache.get(id);
  try {
    const data = await endpoints.alarmEvents(id);
    const items = (data && data.items) || [];
    const out = items.length ? html`
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
      </table>`.__raw : html`<div class="muted">${t('log.empty')}</div>`.__raw;
    cache.set(id, out);
    if (el.isConnected) el.innerHTML = out;
  } catch (err) {
    if (el.isConnected) el.innerHTML = html`<div class="err">${err.message || String(err)}</div>`.__raw;
  }
}
