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
 * Ask for an acknowledgement comment. Resolves to the comment string
 * (possibly empty) or null when cancelled.
 */
export function askAckComment(count) {
  return new Promise((resolve) => {
    const dlg = document.createElement('dialog');
    dlg.className = 'dlg';
    dlg.innerHTML = html`
      <form method="dialog">
        <h2>${count > 1 ? t('ack.title.n', { n: count }) : t('ack.title')}</h2>
        <label>${t('ack.comment')}
          <textarea name="comment" rows="3" maxlength="1000" placeholder="${t('ack.comment.ph')}"></textarea>
        </label>
        <div class="dlg-actions">
          <button type="button" class="btn" value="cancel">${t('ack.cancel')}</button>
          <button type="submit" class="btn btn-primary" value="ok">${t('ack.confirm')}</button>
        </div>
      </form>`.__raw;
    document.body.appendChild(dlg);
    const form = dlg.querySelector('form');
    const ta = dlg.querySelector('textarea');
    let result = null;
    form.addEventListener('submit', (e) => { e.preventDefault(); result = ta.value.trim(); dlg.close(); });
    dlg.querySelector('button[value=cancel]').addEventListener('click', () => dlg.close());
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    dlg.showModal();
    ta.focus();
  });
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
