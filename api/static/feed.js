// Where the alarm board's data comes from. Two interchangeable sources with
// one interface, so the board does not care which is used:
//
//   const feed = createAlarmFeed({ query, onItems, onStatus });
//   feed.refresh();  // fetch now (e.g. after an acknowledgement)
//   feed.stop();
//
// onItems(items) receives the full current list (as GET /api/v1/alarms would
// return it for `query`); onStatus({ ok, error, mode, fallback }) reports health.
//
// "stream" (default): a snapshot from GET /api/v1/alarms, then one event per
// alarm change from GET /api/v1/alarms/stream (SSE, read with fetch because
// EventSource cannot send the bearer token), with a periodic re-snapshot.
// When the stream drops it reconnects with Last-Event-ID (the server replays
// what was missed) and, while it is down, polls so the board stays current.
// If the server refuses the stream (a 4xx but 401) it polls for good.
// "poll": GET /api/v1/alarms every 2 s.
// Choose with localStorage 'hazmon.feed' = 'poll' | 'stream', or ?feed= in
// the board's URL.

import { endpoints, openEventStream } from './api.js';
import { matchesState } from './alarms.js';
import { t } from './i18n.js';

export const POLL_INTERVAL_MS = 2000;
export const LIST_LIMIT = 2000;
const RESYNC_MS = 60000;
// A stream that sends nothing (not even a keep-alive comment) for this long
// is taken as dead and reopened (proxies can silently drop idle connections).
const STREAM_IDLE_MS = 45000;
// Poll while the stream has been down this long.
const FALLBACK_AFTER_MS = 3000;
// After a longer gap, take a fresh snapshot rather than only replaying.
const RESUME_MAX_GAP_MS = 120000;
const FEED_KEY = 'hazmon.feed';

export function feedMode(override) {
  if (override === 'poll' || override === 'stream') return override;
  try {
    const m = localStorage.getItem(FEED_KEY);
    if (m === 'poll' || m === 'stream') return m;
  } catch { /* ignore */ }
  return 'stream';
}

export function createAlarmFeed({ query, onItems, onStatus, mode }) {
  const q = { ...query, limit: LIST_LIMIT };
  if (feedMode(mode) === 'stream') return streamSource({ query: q, onItems, onStatus });
  return pollSource({ query: q, onItems, onStatus });
}

function pollSource({ query, onItems, onStatus, intervalMs = POLL_INTERVAL_MS, fallback = false }) {
  let stopped = false;
  let timer = null;
  let ctrl = null;
  let inflight = false;
  let again = false;

  async function tick() {
    if (stopped) return;
    clearTimeout(timer);
    if (inflight) { again = true; return; }
    inflight = true;
    ctrl = new AbortController();
    try {
      const data = await endpoints.alarms(query, ctrl.signal);
      if (stopped) return;
      onItems((data && data.items) || []);
      onStatus({ ok: true, mode: 'poll', fallback });
    } catch (error) {
      if (stopped || (error && error.name === 'AbortError')) return;
      onStatus({ ok: false, error, mode: 'poll', fallback });
    } finally {
      inflight = false;
      if (!stopped) {
        if (again) { again = false; timer = setTimeout(tick, 0); } else timer = setTimeout(tick, intervalMs);
      }
    }
  }
  tick();
  return {
    mode: 'poll',
    refresh: tick,
    stop() { stopped = true; clearTimeout(timer); if (ctrl) ctrl.abort(); },
  };
}

function streamSource({ query, onItems, onStatus }) {
  const map = new Map();
  let stopped = false;
  let ctrl = null;
  let emitTimer = null;
  let resyncTimer = null;
  let idleTimer = null;
  let fallbackTimer = null;
  let poller = null;          // the polling source while the stream is down
  let permanentPoll = false;
  let backoff = 1000;
  let lastEventId = null;
  let droppedAt = null;       // when the stream last went down
  let synced = false;         // the map holds a full list (a snapshot or a poll)
  let snapshotting = 0;       // snapshots in flight
  let duringSnapshot = [];    // events that arrived meanwhile, replayed after it

  // The same filters the server applies to the list, applied to events.
  const match = (a) => matchesState(a, query.state || 'all')
    && (!query.enterprise || a.enterprise === query.enterprise)
    && (!query.condition || a.condition === query.condition)
    && (!query.tag || a.tag === query.tag)
    && (!query.hazard_source || a.hazard_source === query.hazard_source);
  const apply = (a) => { if (match(a)) map.set(a.id, a); else map.delete(a.id); };

  const emit = () => {
    if (emitTimer) return;
    emitTimer = setTimeout(() => {
      emitTimer = null;
      if (stopped) return;
      onItems([...map.values()]);
      if (!poller) onStatus({ ok: true, mode: 'stream' });
    }, 100);
  };
  const alive = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => { if (ctrl) ctrl.abort(); }, STREAM_IDLE_MS);
  };

  /** Replace the map with the list; events that came in meanwhile are applied on top
   *  (each event carries the alarm as it was after its change, so order decides). */
  async function snapshot(signal) {
    snapshotting++;
    try {
      const data = await endpoints.alarms(query, signal);
      map.clear();
      for (const a of (data && data.items) || []) map.set(a.id, a);
    } finally {
      snapshotting--;
      if (!snapshotting) {
        for (const a of duringSnapshot) apply(a);
        duringSnapshot = [];
      }
    }
  }

  function startFallback() {
    if (poller || stopped) return;
    poller = pollSource({
      query,
      fallback: true,
      onItems(list) {
        map.clear();
        for (const a of list) map.set(a.id, a);
        synced = true;
        onItems(list);
      },
      onStatus,
    });
  }
  function stopFallback() {
    clearTimeout(fallbackTimer);
    fallbackTimer = null;
    if (poller) { poller.stop(); poller = null; }
  }

  async function run() {
    while (!stopped) {
      ctrl = new AbortController();
      const signal = ctrl.signal;
      let opened = false;
      let live = true;            // this connection is the current one
      let pending = null;         // its first snapshot
      // Resume only over a list that is known good, and after a short gap.
      const resume = synced && lastEventId && droppedAt && Date.now() - droppedAt < RESUME_MAX_GAP_MS;
      try {
        await openEventStream('/api/v1/alarms/stream', {
          signal,
          query: streamQuery(query),
          lastEventId: resume ? lastEventId : null,
          onOpen: () => {
            opened = true;
            alive();
            const ready = () => {
              if (!live) return;
              backoff = 1000;
              droppedAt = null;
              stopFallback();
              emit();
              onStatus({ ok: true, mode: 'stream' });
              clearInterval(resyncTimer);
              resyncTimer = setInterval(() => snapshot(signal).then(emit).catch(() => {}), RESYNC_MS);
            };
            if (resume) { ready(); return; }  // the server replays what was missed
            pending = snapshot(signal).then(() => { synced = true; emit(); ready(); }).catch((error) => {
              if (error.name === 'AbortError' || !live) return;
              onStatus({ ok: false, error, mode: 'stream' });
              ctrl.abort();
            });
          },
          onChunk: alive,
          onEvent: (ev) => {
            if (ev.id) lastEventId = ev.id;
            if (ev.event !== 'alarm' && ev.event !== 'message') return;
            let a;
            try { a = JSON.parse(ev.data); } catch { return; }
            if (!a || a.id === undefined || a.id === null) return;
            if (snapshotting) duringSnapshot.push(a);
            else { apply(a); emit(); }
          },
        });
      } catch (error) {
        if (stopped) return;
        if (error && error.status === 401) return;
        // No stream on this server (404/405/501, or 422 where the path falls
        // through to /alarms/{id}) or not allowed: poll instead, for good.
        if (error && ((error.status >= 400 && error.status < 500) || error.status === 501)) {
          permanentPoll = true;
          stopFallback();
          startFallback();
          return;
        }
        // A network failure is said below as "reconnecting"; if the server is really
        // gone, the polling that follows reports it.
      } finally {
        live = false;
        clearInterval(resyncTimer);
        clearTimeout(idleTimer);
      }
      if (stopped) return;
      // A stream that ended at once still completes its snapshot, so the list is
      // good and the next connection can resume from the last event id.
      if (pending) await Promise.race([pending, new Promise((r) => setTimeout(r, 10000))]);
      // The stream ended or went idle: poll meanwhile, reconnect with Last-Event-ID.
      if (opened || !droppedAt) droppedAt = Date.now();
      if (!poller && !fallbackTimer) {
        onStatus({ ok: false, error: new Error(t('board.stream_lost')), mode: 'stream', reconnecting: true });
        fallbackTimer = setTimeout(startFallback, FALLBACK_AFTER_MS);
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 30000);
    }
  }
  run();
  return {
    get mode() { return poller ? 'poll' : 'stream'; },
    get permanentPoll() { return permanentPoll; },
    refresh() {
      if (poller) poller.refresh();
      else if (ctrl && !ctrl.signal.aborted) snapshot(ctrl.signal).then(emit).catch(() => {});
    },
    stop() {
      stopped = true;
      clearTimeout(emitTimer); clearTimeout(idleTimer); clearInterval(resyncTimer);
      stopFallback();
      if (ctrl) ctrl.abort();
    },
  };
}

/** The stream takes the list's filters but neither the limit nor the state: an
 *  alarm that leaves the state filter (e.g. closes) must still reach the board. */
function streamQuery(query) {
  const { limit, state, ...rest } = query;
  return rest;
}
