// Small shared helpers: escaping, formatting, toasts, dialogs, script loading.

import { t } from './i18n.js';

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Escape for HTML text and attribute values. */
export function esc(v) {
  if (v === null || v === undefined) return '';
  return String(v).replace(/[&<>"']/g, (c) => ESC[c]);
}

/** Tagged template: values are escaped unless wrapped in raw(). */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out += (v && v.__raw !== undefined) ? v.__raw : Array.isArray(v) ? v.map((x) => (x && x.__raw !== undefined ? x.__raw : esc(x))).join('') : esc(v);
    out += strings[i + 1];
  }
  return { __raw: out };
}
export function raw(s) { return { __raw: s }; }

/** Parse an API time (RFC 3339 string or epoch ms) into a Date, or null. */
export function toDate(v) {
  if (v === null || v === undefined || v === '') return null;
  const d = typeof v === 'number' ? new Date(v) : new Date(String(v));
  return Number.isNaN(d.getTime()) ? null : d;
}

const p2 = (n) => String(n).padStart(2, '0');
/** Local time as YYYY-MM-DD HH:mm:ss. */
export function fmtTime(v) {
  const d = v instanceof Date ? v : toDate(v);
  if (!d) return '';
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}
export function fmtClock(d = new Date()) {
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/** A measured value: up to 6 significant digits, no exponent for usual plant values. */
export function fmtNum(v) {
  if (v === null || v === undefined || v === '') return '';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (n === 0) return '0';
  const a = Math.abs(n);
  if (a >= 1e-4 && a < 1e9) return String(Number(n.toPrecision(6)));
  return n.toPrecision(4);
}

// ---- toasts -------------------------------------------------------------

function toastHost() {
  let host = document.getElementById('toasts');
  if (!host) {
    host = document.createElement('div');
    host.id = 'toasts';
    host.setAttribute('role', 'status');
    host.setAttribute('aria-live', 'polite');
    document.body.appendChild(host);
  }
  return host;
}

/** Show a toast. kind: 'error' | 'info' | 'ok'. Errors stay longer; click closes. */
export function toast(message, kind = 'info', ms) {
  const host = toastHost();
  const el = document.createElement('div');
  el.className = `toast toast-${kind}`;
  el.textContent = message;
  el.title = message;
  const close = () => { el.classList.add('toast-out'); setTimeout(() => el.remove(), 250); };
  el.addEventListener('click', close);
  host.appendChild(el);
  while (host.children.length > 6) host.firstElementChild.remove();
  setTimeout(close, ms ?? (kind === 'error' ? 12000 : 4000));
  return el;
}

/** Report a failed call to the user, unless it was already handled (401 redirect) or aborted. */
export function reportError(err) {
  if (!err) return;
  if (err.name === 'AbortError') return;
  if (err.handled) return;
  console.error(err);
  toast(err.message || String(err), 'error');
}

// ---- dialogs ------------------------------------------------------------

/**
 * A modal form. `body` is the inner HTML of the form (fields), `onMount(dlg)`
 * wires it; `collect(form)` returns the result, or `{ error }` to show a
 * message and keep the dialog open. Resolves to the result or null (cancelled).
 */
export function modalForm({ title, body, confirm, collect, onMount, wide = false }) {
  return new Promise((resolve) => {
    const dlg = document.createElement('dialog');
    dlg.className = `dlg${wide ? ' dlg-wide' : ''}`;
    dlg.innerHTML = html`
      <form method="dialog" novalidate>
        <h2>${title}</h2>
        ${body}
        <div class="dlg-error err" hidden></div>
        <div class="dlg-actions">
          <button type="button" class="btn" value="cancel">${t('ack.cancel')}</button>
          <button type="submit" class="btn btn-primary" value="ok">${confirm}</button>
        </div>
      </form>`.__raw;
    document.body.appendChild(dlg);
    const form = dlg.querySelector('form');
    const errEl = dlg.querySelector('.dlg-error');
    let result = null;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const r = collect(form);
      if (r && typeof r === 'object' && 'error' in r) { errEl.textContent = r.error; errEl.hidden = false; return; }
      result = r;
      dlg.close();
    });
    dlg.querySelector('button[value=cancel]').addEventListener('click', () => dlg.close());
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    dlg.showModal();
    if (onMount) onMount(dlg);
    const first = dlg.querySelector('textarea, input:not([type=hidden]), select');
    if (first) first.focus();
  });
}

/** Ask for an optional comment. Resolves to the (possibly empty) comment or null. */
export function askComment({ title, label, placeholder = '', confirm }) {
  return modalForm({
    title, confirm,
    body: html`<label>${label}
      <textarea name="comment" rows="3" maxlength="1000" placeholder="${placeholder}"></textarea></label>`,
    collect: (form) => form.elements.comment.value.trim(),
  });
}

/**
 * Ask for an acknowledgement comment. Resolves to the comment string
 * (possibly empty) or null when cancelled.
 */
export function askAckComment(count) {
  return askComment({
    title: count > 1 ? t('ack.title.n', { n: count }) : t('ack.title'),
    label: t('ack.comment'), placeholder: t('ack.comment.ph'), confirm: t('ack.confirm'),
  });
}

const SHELVE_PRESETS_MIN = [15, 30, 60, 120, 240, 480, 1440];

/**
 * Ask why and how long to shelve `count` alarms of these priorities. `maxS`
 * maps priority to the maximum in seconds; the smallest of the priorities
 * involved applies. Resolves to {durationS, reason} or null.
 */
export function askShelve({ count, priorities, maxS }) {
  const known = priorities.filter((p) => maxS[p]);
  const limit = known.length ? Math.min(...known.map((p) => maxS[p])) : null;
  const presets = SHELVE_PRESETS_MIN.filter((m) => limit === null || m * 60 <= limit);
  const def = presets.includes(60) ? 60 : presets[presets.length - 1] || 15;
  return modalForm({
    title: count > 1 ? t('shelve.title.n', { n: count }) : t('shelve.title'),
    confirm: t('shelve.confirm'),
    body: html`
      <label>${t('shelve.reason')}
        <textarea name="reason" rows="3" maxlength="2000" required placeholder="${t('shelve.reason.ph')}"></textarea></label>
      <label>${t('shelve.duration')}
        <span class="dur-row">
          <select name="preset">
            ${presets.map((m) => html`<option value="${m}" ${m === def ? raw('selected') : ''}>${fmtDuration(m * 60)}</option>`)}
            <option value="custom">${t('shelve.custom')}</option>
          </select>
          <input type="number" name="minutes" min="1" step="1" value="${def}" aria-label="${t('shelve.minutes')}" hidden>
          <span class="muted" data-unit hidden>${t('shelve.minutes')}</span>
        </span></label>
      <div class="shelve-max">${t('shelve.max')}:
        ${['high', 'medium', 'low'].map((p) => html`<span class="max-item${priorities.includes(p) ? ' on' : ''}" data-prio="${p}"><span class="badge pr pr-${p}">${t('prio.' + p)}</span> ${maxS[p] ? fmtDuration(maxS[p]) : '—'}</span>`)}
      </div>
      <div class="warn" data-over hidden></div>`,
    onMount(dlg) {
      const f = dlg.querySelector('form').elements;
      const over = dlg.querySelector('[data-over]');
      const check = () => {
        const custom = f.preset.value === 'custom';
        f.minutes.hidden = !custom;
        dlg.querySelector('[data-unit]').hidden = !custom;
        const secs = (custom ? Number(f.minutes.value) : Number(f.preset.value)) * 60;
        over.hidden = !(limit !== null && secs > limit);
        over.textContent = t('shelve.over', { max: limit ? fmtDuration(limit) : '' });
      };
      f.preset.addEventListener('change', () => { if (f.preset.value === 'custom') f.minutes.focus(); check(); });
      f.minutes.addEventListener('input', check);
      check();
    },
    collect(form) {
      const f = form.elements;
      const reason = f.reason.value.trim();
      if (!reason) return { error: t('shelve.need_reason') };
      const minutes = f.preset.value === 'custom' ? Number(f.minutes.value) : Number(f.preset.value);
      if (!Number.isFinite(minutes) || minutes <= 0) return { error: t('shelve.need_duration') };
      return { reason, durationS: Math.round(minutes * 60) };
    },
  });
}

/** Ask for a mode change of a hazard source (or point): mode and reason. */
export function askMode({ title, current }) {
  const next = current === 'normal' ? 'maintenance' : 'normal';
  return modalForm({
    title, confirm: t('mode.confirm'),
    body: html`
      <label>${t('mode.new')}
        <select name="mode">
          ${['normal', 'maintenance', 'shutdown'].map((m) => html`<option value="${m}" ${m === next ? raw('selected') : ''}>${t('mode.' + m)}</option>`)}
        </select></label>
      <label>${t('mode.reason')}
        <textarea name="reason" rows="3" maxlength="2000" placeholder="${t('mode.reason.ph')}"></textarea></label>
      <p class="muted small">${t('mode.help')}</p>`,
    collect(form) {
      const f = form.elements;
      const reason = f.reason.value.trim();
      if (f.mode.value !== 'normal' && !reason) return { error: t('mode.need_reason') };
      return { mode: f.mode.value, reason: reason || null };
    },
  });
}

/** A duration in seconds as text: "45 分钟", "1 小时 30 分钟", "1 h 30 min". */
export function fmtDuration(secs) {
  const s = Math.round(Number(secs));
  if (!Number.isFinite(s)) return '';
  if (s < 60) return t('dur.s', { n: s });
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [];
  if (d) parts.push(t('dur.d', { n: d }));
  if (h) parts.push(t('dur.h', { n: h }));
  if (m && !d) parts.push(t('dur.m', { n: m }));
  return parts.join(' ') || t('dur.m', { n: 0 });
}

// ---- local times ----------------------------------------------------------

/** A Date as the value of an <input type="datetime-local"> (local time, minutes). */
export function toLocalInput(d) {
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}`;
}
/** The value of a datetime-local input as a Date (local time), or null. */
export function fromLocalInput(v) {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}
/** RFC 3339 in the browser's local offset, e.g. 2026-11-23T08:00:00+08:00. */
export function isoLocal(d) {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}${sign}${p2(Math.floor(a / 60))}:${p2(a % 60)}`;
}

// ---- misc ---------------------------------------------------------------

const scripts = new Map();
/** Load a classic script once (vendored libraries). */
export function loadScript(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.async = true;
      s.onload = () => resolve();
      s.onerror = () => { scripts.delete(src); reject(new Error(`failed to load ${src}`)); };
      document.head.appendChild(s);
    }));
  }
  return scripts.get(src);
}

/** Build a hash route with encoded path segments and an optional query. */
export function href(parts, query) {
  let h = '#/' + parts.map((p) => encodeURIComponent(p)).join('/');
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    if (s) h += '?' + s;
  }
  return h;
}
