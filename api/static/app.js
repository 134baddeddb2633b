// Duty console shell: header, hash routing, sign-in guard, language switch.
//
// Routes: #/signin, #/alarms (default), #/point/{enterprise}/{tag},
// #/hazard/{enterprise}/{code}, #/enterprises (?open=CODE), #/report,
// #/handover, #/warnings (?id=), #/incidents, #/incidents/{id}, #/resources.
// Path segments are URI-encoded.

import { getToken, clearToken, setFlash } from './api.js';
import { t, getLang, setLang, onLangChange } from './i18n.js';
import { html, fmtTime } from './ui.js';
import { mountSignin } from './signin.js';
import { mountBoard } from './board.js';
import { mountPoint } from './point.js';
import { mountEnterprises } from './enterprises.js';
import { mountHazard } from './hazard.js';
import { mountReport } from './report.js';
import { mountHandover } from './handover.js';
import { mountWarnings } from './warnings.js';
import { mountIncidents } from './incidents.js';
import { mountResources } from './resources.js';

const main = document.getElementById('main');
const header = document.getElementById('header');
let unmount = null;

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/alarms';
  const [path, qs = ''] = h.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  const query = Object.fromEntries(new URLSearchParams(qs));
  return { parts, query };
}

function renderHeader(route) {
  const signedIn = !!getToken();
  header.innerHTML = html`
    <div class="brand"><span class="logo" aria-hidden="true"></span><span class="name">hazmon</span><span class="sub">${t('app.title')}</span></div>
    <nav class="nav">${signedIn ? html`
      <a href="#/alarms" id="nav-alarms" class="${route === 'alarms' ? 'on' : ''}">${t('nav.alarms')}</a>
      <a href="#/enterprises" id="nav-enterprises" class="${route === 'enterprises' || route === 'hazard' || route === 'point' ? 'on' : ''}">${t('nav.enterprises')}</a>
      <a href="#/warnings" id="nav-warnings" class="${route === 'warnings' ? 'on' : ''}">${t('nav.warnings')}</a>
      <a href="#/incidents" id="nav-incidents" class="${route === 'incidents' ? 'on' : ''}">${t('nav.incidents')}</a>
      <a href="#/resources" id="nav-resources" class="${route === 'resources' ? 'on' : ''}">${t('nav.resources')}</a>
      <a href="#/report" id="nav-report" class="${route === 'report' ? 'on' : ''}">${t('nav.report')}</a>
      <a href="#/handover" id="nav-handover" class="${route === 'handover' ? 'on' : ''}">${t('nav.handover')}</a>` : ''}
    </nav>
    <span class="spacer"></span>
    <span class="clock" id="clock"></span>
    <button class="btn btn-ghost" type="button" id="fs" title="${t('hdr.fullscreen')}" >${t('hdr.fullscreen')}</button>
    <button class="btn btn-ghost" type="button" id="lang" title="${t('hdr.lang.title')}">${t('hdr.lang')}</button>
    ${signedIn ? html`<button class="btn btn-ghost" type="button" id="signout">${t('hdr.signout')}</button>` : ''}`.__raw;
  tickClock();
  header.querySelector('#lang').addEventListener('click', () => setLang(getLang() === 'zh' ? 'en' : 'zh'));
  header.querySelector('#fs').addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen(); else document.documentElement.requestFullscreen().catch(() => {});
  });
  const so = header.querySelector('#signout');
  if (so) so.addEventListener('click', () => { clearToken(); setFlash('signin.signedout'); location.hash = '#/signin'; });
}

function tickClock() {
  const el = document.getElementById('clock');
  if (el) el.textContent = fmtTime(new Date());
}
setInterval(tickClock, 1000);

function route() {
  if (unmount) { try { unmount(); } catch (e) { console.error(e); } unmount = null; }
  const { parts, query } = parseHash();
  let name = parts[0] || 'alarms';
  if (name !== 'signin' && !getToken()) {
    const next = location.hash && !location.hash.startsWith('#/signin') ? location.hash : '';
    history.replaceState(null, '', next ? `#/signin?next=${encodeURIComponent(next)}` : '#/signin');
    return route();
  }
  if (name === 'signin' && getToken()) {
    history.replaceState(null, '', safeNext(query.next));
    return route();
  }
  renderHeader(name);
  main.className = `page-${name}`;
  main.innerHTML = '';
  switch (name) {
    case 'signin':
      unmount = mountSignin(main, query, {
        onSignedIn(next) { location.hash = safeNext(next); },
      });
      break;
    case 'alarms':
      unmount = mountBoard(main, query);
      break;
    case 'point':
      if (parts.length >= 3) { unmount = mountPoint(main, query, parts[1], parts.slice(2).join('/')); break; }
      notFound();
      break;
    case 'hazard':
      if (parts.length >= 3) { unmount = mountHazard(main, query, parts[1], parts.slice(2).join('/')); break; }
      notFound();
      break;
    case 'enterprises':
      unmount = mountEnterprises(main, query);
      break;
    case 'report':
      unmount = mountReport(main, query);
      break;
    case 'handover':
      unmount = mountHandover(main, query);
      break;
    case 'warnings':
      unmount = mountWarnings(main, query);
      break;
    case 'incidents':
      unmount = mountIncidents(main, query, parts[1]);
      break;
    case 'resources':
      unmount = mountResources(main, query);
      break;
    default:
      notFound();
  }
}

/** Only in-app routes are followed after sign-in. */
function safeNext(next) {
  return next && next.startsWith('#/') && !next.startsWith('#/signin') ? next : '#/alarms';
}

function notFound() {
  main.innerHTML = html`<div class="pad"><h1>${t('route.notfound')}</h1><a href="#/alarms">${t('nav.alarms')}</a></div>`.__raw;
}

window.addEventListener('hashchange', route);
onLangChange(route);
// Another tab signed out (or in): follow it.
window.addEventListener('storage', (e) => { if (e.key === 'hazmon.token') route(); });
route();
