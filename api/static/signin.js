// Sign-in: paste a bearer token, check it against the API, keep it in localStorage.

import { api, setToken, takeFlash } from './api.js';
import { t } from './i18n.js';
import { html } from './ui.js';

export function mountSignin(root, query, { onSignedIn }) {
  const flash = takeFlash();
  root.innerHTML = html`
    <section class="signin">
      <form class="card" id="form" autocomplete="off">
        <h1>${t('signin.title')}</h1>
        <div class="flash${flash === 'signin.signedout' ? ' info' : ''}" id="msg" ${flash ? '' : 'hidden'}>${flash ? t(flash) : ''}</div>
        <label for="token">${t('signin.prompt')}</label>
        <input id="token" name="token" type="password" spellcheck="false" autocomplete="off" placeholder="${t('signin.token')}">
        <button class="btn btn-primary" type="submit" id="go">${t('signin.submit')}</button>
        <p class="muted small">${t('signin.help')}</p>
      </form>
    </section>`.__raw;
  const $ = (id) => root.querySelector('#' + id);
  const msg = (text, info = false) => { $('msg').hidden = !text; $('msg').textContent = text; $('msg').classList.toggle('info', info); };
  $('token').focus();

  $('form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = $('token').value.trim().replace(/^Bearer\s+/i, '');
    if (!token) { msg(t('signin.empty')); return; }
    $('go').disabled = true;
    msg(t('signin.checking'), true);
    try {
      // Any read the duty officer needs will do as a check. A 403 means the
      // token is valid but limited: accept it, the pages will say what is refused.
      await api('/api/v1/alarms', { query: { state: 'active' }, token, noAuthRedirect: true });
    } catch (err) {
      if (err.status !== 403) {
        $('go').disabled = false;
        msg(err.status === 401 ? t('signin.invalid') : err.message);
        return;
      }
    }
    setToken(token);
    onSignedIn(query.next);
  });
  return () => {};
}
