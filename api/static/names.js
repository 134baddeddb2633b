// Cached look-ups of display names: enterprise code -> name, and
// (enterprise, hazard-source code) -> name. Alarms carry codes only.

import { endpoints } from './api.js';

const TTL_MS = 5 * 60 * 1000;
let entPromise = null;
let entAt = 0;
const entNames = new Map();
const hsCache = new Map();      // enterprise -> { at, promise, names: Map }
const listeners = new Set();

function changed() { for (const fn of listeners) fn(); }
/** Called whenever new names arrived. Returns an unsubscribe function. */
export function onNames(fn) { listeners.add(fn); return () => listeners.delete(fn); }

/** The enterprise list ({code, name, lat, lon}), cached for a few minutes. */
export function loadEnterprises(force = false) {
  if (!entPromise || force || Date.now() - entAt > TTL_MS) {
    entAt = Date.now();
    entPromise = endpoints.enterprises().then((data) => {
      const items = (data && data.items) || [];
      for (const e of items) entNames.set(e.code, e.name || e.code);
      changed();
      return items;
    }).catch((err) => { entPromise = null; throw err; });
  }
  return entPromise;
}

export function enterpriseName(code) { return entNames.get(code) || ''; }

/** Hazard sources of one enterprise, cached. */
export function loadHazardSources(enterprise, force = false) {
  let c = hsCache.get(enterprise);
  if (!c || force || Date.now() - c.at > TTL_MS) {
    c = { at: Date.now(), names: c ? c.names : new Map(), promise: null };
    hsCache.set(enterprise, c);
    const entry = c;
    c.promise = endpoints.hazardSources(enterprise).then((data) => {
      const items = (data && data.items) || [];
      for (const h of items) entry.names.set(h.code, h.name || h.code);
      changed();
      return items;
    }).catch((err) => {
      // Keep the failed entry until the TTL passes: no retry storm on every board refresh.
      console.warn('hazard sources of', enterprise, err);
      throw err;
    });
  }
  return c.promise;
}

export function hazardName(enterprise, code) {
  const c = hsCache.get(enterprise);
  return (c && c.names.get(code)) || '';
}

/** Make sure hazard-source names of these enterprises are (being) loaded; errors are ignored here. */
export function ensureHazardNames(enterprises) {
  for (const e of enterprises) {
    if (!e) continue;
    const c = hsCache.get(e);
    // Names are cosmetic (the code is shown anyway): failures are logged, not toasted.
    if (!c || Date.now() - c.at > TTL_MS) loadHazardSources(e).catch(() => {});
  }
}
