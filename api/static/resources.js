// Rescue resources page (应急救援资源): teams, equipment and stocks with coordinates and
// contacts, public ones and those of the enterprises in scope (read-only).
//
// Route: #/resources (?kind=&enterprise=)

import { endpoints } from './api.js';
import { t, tCode } from './i18n.js';
import { html, href, reportError } from './ui.js';
import { resourcesTable } from './response.js';

export function mountResources(root, query) {
  const f = { kind: query.kind || '', enterprise: query.enterprise || '' };
  let disposed = false;
  root.innerHTML = html`
    <section class="resources page">
      <div class="toolbar">
        <h1>${t('res.title')}</h1>
        <label>${t('res.kind')}<select id="f-kind"><option value="">${t('filter.all')}</option>
          ${['team', 'equipment', 'stock'].map((k) => html`<option value="${k}">${tCode('rkind', k)}</option>`)}</select></label>
        <span class="spacer"></span><span class="muted" id="count"></span>
      </div>
      <div class="panel"><div id="list"><div class="muted pad">${t('point.loading')}</div></div></div>
    </section>`.__raw;
  const $ = (i) => root.querySelector('#' + i);
  document.title = `${t('res.title')} · hazmon`;
  $('f-kind').value = f.kind;
  $('f-kind').addEventListener('change', (e) => {
    f.kind = e.target.value;
    history.replaceState(null, '', href(['resources'], f));
    load();
  });
  async function load() {
    try {
      const r = await endpoints.resources({ kind: f.kind, enterprise: f.enterprise });
      if (disposed) return;
      const items = r.items || [];
      $('count').textContent = t('hs.count', { n: items.length });
      $('list').innerHTML = resourcesTable(items, { distance: false }).__raw;
    } catch (err) { reportError(err); }
  }
  load();
  return () => { disposed = true; };
}
