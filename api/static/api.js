// HTTP client for the hazmon API (CONTRACT.md): bearer token, JSON, errors.
// A 401 from any call drops the token and sends the user to the sign-in page.

import { t } from './i18n.js';

const TOKEN_KEY = 'hazmon.token';
const FLASH_KEY = 'hazmon.signin.flash';

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}
export function setToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}
export function clearToken() {
  try { localStorage.removeItem(TOKEN_KEY); } catch { /* ignore */ }
}

/** A message for the sign-in page, shown once. */
export function setFlash(key) {
  try { sessionStorage.setItem(FLASH_KEY, key); } catch { /* ignore */ }
}
export function takeFlash() {
  try {
    const v = sessionStorage.getItem(FLASH_KEY);
    sessionStorage.removeItem(FLASH_KEY);
    return v;
  } catch { return null; }
}

export class ApiError extends Error {
  constructor(status, detail, message) {
    super(message);
    this.status = status;      // 0 = network failure
    this.detail = detail;
    this.handled = false;      // true once the user has been told (e.g. 401 redirect)
  }
}

/** Turn FastAPI-style `detail` (string, list of {loc,msg}, or object) into text. */
export function formatDetail(detail) {
  if (detail === null || detail === undefined) return '';
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      if (d && typeof d === 'object') {
        const where = Array.isArray(d.loc) ? d.loc.filter((x) => x !== 'body' && x !== 'query').join('.') : (d.row !== undefined ? `row ${d.row}${d.column ? ' ' + d.column : ''}` : '');
        const msg = d.msg ?? d.message ?? d.error ?? JSON.stringify(d);
        return where ? `${where}: ${msg}` : msg;
      }
      return String(d);
    }).join('; ');
  }
  try { return JSON.stringify(detail); } catch { return String(detail); }
}

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    }
  }
  return url.pathname + url.search;
}

function authFailed() {
  clearToken();
  setFlash('signin.expired');
  if (!location.hash.startsWith('#/signin')) {
    const next = location.hash && location.hash !== '#/' ? `?next=${encodeURIComponent(location.hash)}` : '';
    location.hash = `#/signin${next}`;
  }
}

/**
 * Call the API. Resolves to the parsed JSON body (or null for an empty body).
 * Rejects with ApiError. Options: method, query, body (JSON), signal,
 * token (override), noAuthRedirect (don't treat 401 as "session over").
 */
export async function api(path, opts = {}) {
  const { method = 'GET', query, body, signal, token = getToken(), noAuthRedirect = false, headers = {} } = opts;
  const h = { Accept: 'application/json', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(buildUrl(path, query), { method, headers: h, body: payload, signal, cache: 'no-store' });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, null, t('err.network'));
  }
  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.ok) return data;

  const detail = data && typeof data === 'object' && 'detail' in data
    ? formatDetail(data.detail)
    : (text ? text.slice(0, 200) : res.statusText);
  const err = new ApiError(res.status, detail, '');
  if (res.status === 401) {
    err.message = t('signin.expired');
    if (!noAuthRedirect) { err.handled = true; authFailed(); }
  } else if (res.status === 403) {
    err.message = t('err.forbidden', { detail });
  } else if (res.status === 404) {
    err.message = t('err.notfound', { detail });
  } else {
    err.message = t('err.http', { status: res.status, detail });
  }
  throw err;
}

/**
 * Open a Server-Sent-Events stream with the bearer token (EventSource cannot
 * send headers, so this reads the stream with fetch). Calls onOpen() once the
 * server answered 200, onChunk() whenever bytes arrive (keep-alives too),
 * onEvent({event, data, id}) per event; resolves when
 * the stream ends, rejects with ApiError on an HTTP error or a network failure.
 */
export async function openEventStream(path, { signal, onOpen, onEvent, onChunk, query, lastEventId } = {}) {
  const h = { Accept: 'text/event-stream' };
  const token = getToken();
  if (token) h.Authorization = `Bearer ${token}`;
  if (lastEventId) h['Last-Event-ID'] = String(lastEventId);
  let res;
  try {
    res = await fetch(buildUrl(path, query), { headers: h, signal, cache: 'no-store' });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, null, t('err.network'));
  }
  if (!res.ok || !res.body) {
    const text = await res.text().catch(() => '');
    let detail = text.slice(0, 200);
    try { detail = formatDetail(JSON.parse(text).detail); } catch { /* keep text */ }
    const err = new ApiError(res.status, detail, t('err.http', { status: res.status, detail }));
    if (res.status === 401) { err.handled = true; authFailed(); }
    throw err;
  }
  if (onOpen) onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { event: 'message', data: [], id: null };
  let lastId = lastEventId || null;   // the SSE "last event ID" carries over events without an id
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    if (onChunk) onChunk();
    buf += value;
    let nl;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
      if (line === '') {
        if (ev.data.length) onEvent({ event: ev.event, data: ev.data.join('\n'), id: lastId });
        ev = { event: 'message', data: [], id: null };
        continue;
      }
      if (line.startsWith(':')) continue;            // comment / keep-alive
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let val = i < 0 ? '' : line.slice(i + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'data') ev.data.push(val);
      else if (field === 'event') ev.event = val;
      else if (field === 'id') { ev.id = val; if (!val.includes('\0')) lastId = val; }
    }
  }
}

/** Run `fn` over `items` with at most `limit` in flight; returns settled results. */
export async function mapLimited(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      try { results[i] = { ok: true, value: await fn(items[i], i) }; } catch (error) { results[i] = { ok: false, error }; }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A concurrency gate: `gate(fn)` runs fn when fewer than `n` gated calls are in flight. */
export function limiter(n) {
  let active = 0;
  const queue = [];
  const next = () => {
    if (active >= n || !queue.length) return;
    active++;
    const { fn, resolve, reject } = queue.shift();
    Promise.resolve().then(fn).then(resolve, reject).finally(() => { active--; next(); });
  };
  return (fn) => new Promise((resolve, reject) => { queue.push({ fn, resolve, reject }); next(); });
}

const seg = encodeURIComponent;

/**
 * Download a file from the API with the bearer token (a plain link cannot send
 * it): fetch it, then save it under the server's file name (or `fallbackName`).
 */
export async function download(path, query, fallbackName) {
  const h = { Accept: 'text/csv' };
  const token = getToken();
  if (token) h.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(buildUrl(path, query), { headers: h, cache: 'no-store' });
  } catch {
    throw new ApiError(0, null, t('err.network'));
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    let detail = text.slice(0, 200);
    try { detail = formatDetail(JSON.parse(text).detail); } catch { /* keep text */ }
    const err = new ApiError(res.status, detail, t('err.http', { status: res.status, detail }));
    if (res.status === 401) { err.handled = true; authFailed(); }
    throw err;
  }
  const blob = await res.blob();
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(cd);
  const name = m ? decodeURIComponent(m[1] || m[2]) : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}

// Endpoints used by the console. The first group is CONTRACT v1; the
// list/read endpoints of enterprises, hazard sources and points are provided
// by the server beside it.
export const endpoints = {
  alarms: (query, signal) => api('/api/v1/alarms', { query, signal }),
  ackAlarm: (id, comment) => api(`/api/v1/alarms/${seg(id)}/ack`, { method: 'POST', body: comment ? { comment } : {} }),
  shelveAlarm: (id, durationS, reason) => api(`/api/v1/alarms/${seg(id)}/shelve`, { method: 'POST', body: { duration_s: durationS, reason } }),
  unshelveAlarm: (id) => api(`/api/v1/alarms/${seg(id)}/unshelve`, { method: 'POST' }),
  resetAlarm: (id, comment) => api(`/api/v1/alarms/${seg(id)}/reset`, { method: 'POST', body: comment ? { comment } : {} }),
  alarmEvents: (id, signal) => api(`/api/v1/alarms/${seg(id)}/events`, { signal }),
  alarmDeliveries: (id, signal) => api(`/api/v1/alarms/${seg(id)}/deliveries`, { signal }),
  point: (e, tag, signal) => api(`/api/v1/enterprises/${seg(e)}/points/${seg(tag)}`, { signal }),
  readings: (e, tag, query, signal) => api(`/api/v1/enterprises/${seg(e)}/points/${seg(tag)}/readings`, { query, signal }),
  enterprises: (signal) => api('/api/v1/enterprises', { signal }),
  hazardSources: (e, signal) => api(`/api/v1/enterprises/${seg(e)}/hazard-sources`, { signal }),
  hazardSource: (e, code, signal) => api(`/api/v1/enterprises/${seg(e)}/hazard-sources/${seg(code)}`, { signal }),
  hazardRecord: (e, code, signal) => api(`/api/v1/enterprises/${seg(e)}/hazard-sources/${seg(code)}/record`, { signal }),
  setHazardMode: (e, code, body) => api(`/api/v1/enterprises/${seg(e)}/hazard-sources/${seg(code)}/mode`, { method: 'PUT', body }),
  setPointMode: (e, tag, body) => api(`/api/v1/enterprises/${seg(e)}/points/${seg(tag)}/mode`, { method: 'PUT', body }),
  points: (e, signal) => api(`/api/v1/enterprises/${seg(e)}/points`, { signal }),
  alarmPerformance: (query, signal) => api('/api/v1/reports/alarm-performance', { query, signal }),
  shiftHandover: (query, signal) => api('/api/v1/reports/shift-handover', { query, signal }),
  me: (signal) => api('/api/v1/me', { signal }),
  // hazard records, risk warnings, incidents and rescue resources
  alarmContext: (id, signal) => api(`/api/v1/alarms/${seg(id)}/context`, { signal }),
  gradingHistory: (e, code, signal) => api(`/api/v1/enterprises/${seg(e)}/hazard-sources/${seg(code)}/grading-history`, { signal }),
  nearbyResources: (e, code, query, signal) => api(`/api/v1/enterprises/${seg(e)}/hazard-sources/${seg(code)}/nearby-resources`, { query, signal }),
  warnings: (query, signal) => api('/api/v1/warnings', { query, signal }),
  warningSummary: (query, signal) => api('/api/v1/warnings/summary', { query, signal }),
  warning: (id, signal) => api(`/api/v1/warnings/${seg(id)}`, { signal }),
  warningStep: (id, step, body) => api(`/api/v1/warnings/${seg(id)}/${step}`, { method: 'POST', body }),
  incidents: (query, signal) => api('/api/v1/incidents', { query, signal }),
  incident: (id, signal) => api(`/api/v1/incidents/${seg(id)}`, { signal }),
  openIncident: (body) => api('/api/v1/incidents', { method: 'POST', body }),
  incidentPost: (id, what, body) => api(`/api/v1/incidents/${seg(id)}/${what}`, { method: 'POST', body }),
  dispatchStatus: (id, did, body) => api(`/api/v1/incidents/${seg(id)}/dispatches/${seg(did)}/status`, { method: 'POST', body }),
  resources: (query, signal) => api('/api/v1/rescue-resources', { query, signal }),
};

async function authedFetch(path, query, init = {}) {
  const h = { ...(init.headers || {}) };
  const token = getToken();
  if (token) h.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(buildUrl(path, query), { ...init, headers: h, cache: 'no-store' });
  } catch {
    throw new ApiError(0, null, t('err.network'));
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    let detail = text.slice(0, 200);
    try { detail = formatDetail(JSON.parse(text).detail); } catch { /* keep text */ }
    const err = new ApiError(res.status, detail, t('err.http', { status: res.status, detail }));
    if (res.status === 401) { err.handled = true; authFailed(); }
    throw err;
  }
  return res;
}

/**
 * Fetch a document with the bearer token and open it in a new tab as a blob
 * (a plain link cannot send the token). `win` may be a window opened beforehand
 * (synchronously in the click, so a popup blocker lets it through).
 */
export async function openBlob(path, query, win) {
  const w = win || window.open('', '_blank');
  try {
    const res = await authedFetch(path, query);
    const url = URL.createObjectURL(await res.blob());
    if (w) w.location.href = url; else location.assign(url);
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    return url;
  } catch (err) {
    if (w) w.close();
    throw err;
  }
}

/** Upload a file as the raw request body (`filename` in the query). Resolves to the JSON answer. */
export async function uploadFile(path, file, method = 'POST') {
  const res = await authedFetch(path, { filename: file.name || 'attachment' }, {
    method, body: file, headers: { 'Content-Type': file.type || 'application/octet-stream', Accept: 'application/json' },
  });
  return res.json().catch(() => null);
}
