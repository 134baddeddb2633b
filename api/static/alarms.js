// Alarm vocabulary shared by the board and the point page: ordering,
// badges, and acknowledgement (single and bulk).

import { endpoints, mapLimited } from './api.js';
import { t, tCode } from './i18n.js';
import { html, toast, reportError, askAckComment } from './ui.js';

export const STATES = ['UNACK_ACTIVE', 'ACK_ACTIVE', 'RTN_UNACK', 'SHELVED', 'SUPPRESSED', 'OUT_OF_SERVICE', 'CLOSED'];
export const OPEN_STATES = STATES.filter((s) => s !== 'CLOSED');
export const ACTIVE_STATES = ['UNACK_ACTIVE', 'ACK_ACTIVE'];
export const UNACK_STATES = ['UNACK_ACTIVE', 'RTN_UNACK'];
export const CONDITIONS = ['HIHI', 'HI', 'LO', 'LOLO', 'ROC', 'STALE', 'BAD', 'COMM'];
export const PRIORITIES = ['high', 'medium', 'low'];

const PRIO_RANK = { critical: 0, urgent: 0, high: 1, medium: 2, low: 3 };
export function prioKey(p) { return String(p ?? '').toLowerCase(); }
export function prioRank(p) { return PRIO_RANK[prioKey(p)] ?? 4; }
/** CSS class suffix for a priority (unknown priorities get a neutral look). */
export function prioClass(p) {
  const k = prioKey(p);
  if (k === 'critical' || k === 'urgent') return 'high';
  return PRIO_RANK[k] !== undefined ? k : 'none';
}

export function isUnacked(a) { return UNACK_STATES.includes(a.state); }
export function isAckable(a) { return isUnacked(a); }

function timeOf(v) {
  const n = Date.parse(v);
  return Number.isNaN(n) ? 0 : n;
}

/** Unacknowledged first, then priority high > medium > low, then newest first. */
export function compareAlarms(a, b) {
  const ua = isUnacked(a) ? 0 : 1;
  const ub = isUnacked(b) ? 0 : 1;
  if (ua !== ub) return ua - ub;
  const pa = prioRank(a.priority);
  const pb = prioRank(b.priority);
  if (pa !== pb) return pa - pb;
  const ta = timeOf(a.activated_at);
  const tb = timeOf(b.activated_at);
  if (ta !== tb) return tb - ta;
  return String(b.id).localeCompare(String(a.id));
}

/** Does an alarm pass a state filter: 'open', 'active', 'all' or a state name? */
export function matchesState(a, filter) {
  if (!filter || filter === 'all') return true;
  if (filter === 'open') return a.state !== 'CLOSED';
  if (filter === 'active') return ACTIVE_STATES.includes(a.state);
  return a.state === filter;
}

export function stateBadge(state) {
  return html`<span class="badge st st-${state}">${tCode('state', state)}</span>`;
}
export function prioBadge(p) {
  return html`<span class="badge pr pr-${prioClass(p)}">${tCode('prio', prioKey(p))}</span>`;
}

/**
 * Acknowledge alarms after asking for an optional comment. The contract has
 * one call per alarm, so a bulk acknowledgement sends a few in parallel.
 * Resolves to the number acknowledged (0 when cancelled).
 */
export async function acknowledge(ids) {
  if (!ids.length) return 0;
  const comment = await askAckComment(ids.length);
  if (comment === null) return 0;
  const results = await mapLimited(ids, 4, (id) => endpoints.ackAlarm(id, comment));
  const failed = results.filter((r) => !r.ok);
  const ok = results.length - failed.length;
  if (ok) toast(t('ack.done', { n: ok }), 'ok');
  if (failed.length) {
    if (failed.every((f) => f.error && f.error.handled)) return ok;
    if (failed.length === 1) reportError(failed[0].error);
    else {
      const first = failed.find((f) => !(f.error && f.error.handled));
      toast(t('ack.failed', { n: failed.length, detail: first ? first.error.message : '' }), 'error');
    }
  }
  return ok;
}
