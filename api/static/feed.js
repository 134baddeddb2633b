// Where the alarm board's data comes from. Two interchangeable sources with
// one interface, so the board does not care which is used:
//
//   const feed = createAlarmFeed({ query, onItems, onStatus });
//   feed.refresh();  // fetch now (e.g. after an acknowledgement)
//   feed.stop();
//
// onItems(items) receives the full current list (as GET /api/v1/alarms would
// return it for `query`); onStatus({ ok, error, mode }) reports health.
//
// "poll" (default for now): GET /api/v1/alarms every 2 s.
// "stream": a snapshot from GET /api/v1/alarms, then one event per alarm
// change from GET /api/v1/alarms/stream (SSE, read with fetch because
// EventSource cannot send the bearer token), with a periodic re-snapshot.
// If the server refuses the stream (any 4xx but 401, or 501) it falls back to polling.
// Choose with localStorage 'hazmon.feed' = 'poll' | 'stream', or ?feed= in
// the board's URL.

import { endpoints, openEventStream } from './api.js';
import { matchesState } from './alarms.js';
import { t } from './i18n.js';

export const POLL_INTERVAL_MS = 2000;
const RESYNC_MS = 60000;
// A stream that sends nothing (not even a keep-alive comment) for this long
// is taken as dead and reopened (proxies can silently drop idle connections).
const STREAM_IDLE_MS = 45000;
const FEED_KEY = 'hazmon.feed';

export function feedMode(override) {
  if (override === 'poll' || override === 'stream') return override;
  try {
    const m = localStorage.getItem(FEED_KEY);
    if (m === 'poll' || m === 'stream') return m;
  } catch { /* ignore */ }
  return 'poll';
}

export function createAlarmFeed({ query, onItems, onStatus, mode }) {
  const m = feedMode(mode);
  if (m === 'stream') {
    let current = null;
    const fallback = () => {
      if (current) current.stop();
      current = pollSource({ query, onItems, onStatus });
    };
    current = streamSource({ query, onItems, onStatus, fallback });
    return { stop: () => current.stop(), refresh: () => current.refresh(), get mode() { return current.mode; } };
  }
  return pollSource({ query, onItems, onStatus });
}

function pollSource({ query, onItems, onStatus, intervalMs = POLL_INTERVAL_MS }) {
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
      onStatus({ ok: true, mode: 'poll' });
    } catch (error) {
      if (stopped || (error && error.name === 'AbortError')) return;
      onStatus({ ok: false, error, mode: 'poll' });
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

function streamSource({ query, onItems, onStatus, fallback }) {
  const map = new Map();
  let stopped = false;
  let ctrl = null;
  let emitTimer = null;
  let resyncTimer = null;
  let backoff = 1000;

  // The same filters the server applies to the list, applied to events.
  const match = (a) => matchesState(a, query.state || 'all')
    && (!query.enterprise || a.enterprise === query.enterprise)
    && (!query.condition || a.condition === query.condition)
    && (!query.tag || a.tag === query.tag)
    && (!query.hazard_source || a.hazard_source === query.hazard_source);

  const emit = () => {
    if (emitTimer) return;
    emitTimer = setTimeout(() => {
      emitTimer = null;
      if (stopped) return;
      onItems([...map.values()]);
      onStatus({ ok: true, mode: 'stream' });
    }, 100);
  };
  let idleTimer = null;
  const alive = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => { if (ctrl) ctrl.abort(); }, STREAM_IDLE_MS);
  };
  const apply = (a) => { if (match(a)) map.set(a.id, a); else map.delete(a.id); };

  async function snapshot(signal) {
    const data = await endpoints.alarms(query, signal);
    map.clear();
    for (const a of (data && data.items) || []) map.set(a.id, a);
  }

  async function run() {
    while (!stopped) {
      ctrl = new AbortController();
      const signal = ctrl.signal;
      const aborted = () => signal.aborted;
      let ready = false;
      let buffered = [];
      try {
        await openEventStream('/api/v1/alarms/stream', {
          signal,
          onOpen: () => {
            alive();
            snapshot(signal).then(() => {
              for (const a of buffered) apply(a);
              buffered = [];
              ready = true;
              backoff = 1000;
              emit();
              clearInterval(resyncTimer);
              resyncTimer = setInterval(() => snapshot(signal).then(emit).catch(() => {}), RESYNC_MS);
            }).catch((error) => {
              if (error.name !== 'AbortError') onStatus({ ok: false, error, mode: 'stream' });
              ctrl.abort();
            });
          },
          onChunk: alive,
          onEvent: (ev) => {
            let a;
            try { a = JSON.parse(ev.data); } catch { return; }
            if (!a || a.id === undefined || a.id === null) return;
            if (ready) { apply(a); emit(); } else buffered.push(a);
          },
        });
      } catch (error) {
        if (stopped) return;
        if (error && error.status === 401) return;
        // No stream on this server (404/405/501, or 422 where the path falls
        // through to /alarms/{id}) or not allowed: poll instead.
        if (error && ((error.status >= 400 && error.status < 500) || error.status === 501)) { fallback(); return; }
        if (error && error.name !== 'AbortError') onStatus({ ok: false, error, mode: 'stream' });
      } finally {
        clearInterval(resyncTimer);
        clearTimeout(idleTimer);
      }
      // The stream ended or went idle: say so while reconnecting.
      if (!stopped && aborted()) onStatus({ ok: false, error: new Error(t('board.stream_lost')), mode: 'stream' });
      if (stopped) return;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 30000);
    }
  }
  run();
  return {
    mode: 'stream',
    refresh() { if (ctrl && !ctrl.signal.aborted) snapshot(ctrl.signal).then(emit).catch(() => {}); },
    stop() { stopped = true; clearTimeout(emitTimer); clearTimeout(idleTimer); clearInterval(resyncTimer); if (ctrl) ctrl.abort(); },
  };
}
