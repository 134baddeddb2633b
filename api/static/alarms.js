// Alarm vocabulary shared by the board and the point page: ordering,
// badges, and acknowledgement (single and bulk).

import { endpoints, mapLimited } from './api.js';
import { t, tCode } from './i18n.js';
import { html, toast, reportError, askAckComment, askComment, askShelve, fmtDuration, fmtTime } from './ui.js';

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
/** Only an annunciating alarm can be shelved. */
export function isShelvable(a) { return ANNUNCIATING.includes(a.state); }
export function isUnshelvable(a) { return a.state === 'SHELVED'; }
/** A latched alarm whose condition returned waits for a reset. */
export function isResettable(a) { return !!a.latched && !a.active && ['UNACK_ACTIVE', 'ACK_ACTIVE'].includes(a.state); }
export const ANNUNCIATING = ['UNACK_ACTIVE', 'ACK_ACTIVE', 'RTN_UNACK'];

// Board order: what needs the operator first.
const STATE_RANK = { UNACK_ACTIVE: 0, RTN_UNACK: 1, ACK_ACTIVE: 2, SHELVED: 3, SUPPRESSED: 4, OUT_OF_SERVICE: 5, CLOSED: 6 };
export function stateRank(s) { return STATE_RANK[s] ?? 7; }

function timeOf(v) {
  const n = Date.parse(v);
  return Number.isNaN(n) ? 0 : n;
}

/** By state (unacknowledged active, returned unacknowledged, acknowledged active,
 *  shelved, suppressed, out of service, closed), then priority high > medium > low,
 *  then newest first. */
export function compareAlarms(a, b) {
  const sa = stateRank(a.state);
  const sb = stateRank(b.state);
  if (sa !== sb) return sa - sb;
  const pa = prioRank(a.priority);
  const pb = prioRank(b.priority);
  if (pa !== pb) return pa - pb;
  const ta = timeOf(a.activated_at);
  const tb = timeOf(b.activated_at);
  if (ta !== tb) return tb - ta;
  return Number(b.id) - Number(a.id) || String(b.id).localeCompare(String(a.id));
}

/** Does an alarm pass a state filter: 'open', 'active', 'all' or a state name? */
export function matchesState(a, filter) {
  if (!filter || filter === 'all') return true;
  if (filter === 'open') return a.state !== 'CLOSED';
  if (filter === 'active') return ACTIVE_STATES.includes(a.state);
  return a.state === filter;
}

export function stateBadge(state, alarm) {
  let title = '';
  if (alarm && state === 'SHELVED') {
    title = t('shelve.badge_title', { until: fmtTime(alarm.shelved_until), by: alarm.shelved_by || '', reason: alarm.shelve_reason || '' });
  }
  return html`<span class="badge st st-${state}" title="${title}">${tCode('state', state)}</span>`;
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

// ---- shelving -----------------------------------------------------------

// The server's maximum shelve time per priority (HAZMON_SHELVE_MAX_S_*). These
// are its defaults; a 422 that names another maximum updates them.
export const SHELVE_MAX_S = { high: 3600, medium: 8 * 3600, low: 24 * 3600 };
const MAX_RE = /an? (high|medium|low)-priority alarm can be shelved for at most (\d+) s/;

function learnMax(err) {
  const m = err && err.detail && MAX_RE.exec(String(err.detail));
  if (m) SHELVE_MAX_S[m[1]] = Number(m[2]);
}

/** Report a batch of results: a toast for the successes, the first failure's reason. */
function reportBatch(results, okKey, failKey) {
  const failed = results.filter((r) => !r.ok);
  const ok = results.length - failed.length;
  if (ok) toast(t(okKey, { n: ok }), 'ok');
  if (failed.length && !failed.every((f) => f.error && f.error.handled)) {
    const first = failed.find((f) => !(f.error && f.error.handled));
    if (failed.length === 1) reportError(first.error);
    else toast(t(failKey, { n: failed.length, detail: first ? first.error.message : '' }), 'error');
  }
  return ok;
}

/**
 * Shelve alarms (objects with id and priority) after asking for a reason and a
 * duration; the dialog shows the maximum for their priorities. Resolves to the
 * number shelved (0 when cancelled).
 */
export async function shelve(alarms) {
  if (!alarms.length) return 0;
  const priorities = [...new Set(alarms.map((a) => prioKey(a.priority)))];
  const answer = await askShelve({ count: alarms.length, priorities, maxS: SHELVE_MAX_S });
  if (!answer) return 0;
  const results = await mapLimited(alarms, 4, (a) => endpoints.shelveAlarm(a.id, answer.durationS, answer.reason));
  for (const r of results) if (!r.ok) learnMax(r.error);
  return reportBatch(results, 'shelve.done', 'shelve.failed');
}

/** End shelves early. */
export async function unshelve(ids) {
  if (!ids.length) return 0;
  const results = await mapLimited(ids, 4, (id) => endpoints.unshelveAlarm(id));
  return reportBatch(results, 'unshelve.done', 'unshelve.failed');
}

/** Reset latched alarms whose condition returned, with an optional comment. */
export async function reset(ids) {
  if (!ids.length) return 0;
  const comment = await askComment({
    title: ids.length > 1 ? t('reset.title.n', { n: ids.length }) : t('reset.title'),
    label: t('ack.comment'), confirm: t('reset.confirm'),
  });
  if (comment === null) return 0;
  const results = await mapLimited(ids, 4, (id) => endpoints.resetAlarm(id, comment));
  return reportBatch(results, 'reset.done', 'reset.failed');
}

export { fmtDuration };
