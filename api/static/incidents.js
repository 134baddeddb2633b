// Incidents page (事件处置): the list (status filter) and an incident's detail: the reporting
// clock (1 h to report to the county regulator, counting down, red when overdue) with the
// "reported" action, the timeline (alarms, notes, notifications, dispatches, status changes;
// who, when), a note, status changes, the nearest rescue resources with distance, dispatches
// and their status, and the incident report (HTML / PDF, fetched with the token as a blob).
//
// Routes: #/incidents (?status=), #/incidents/{id}

import { endpoints, openBlob } from './api.js';
import { t, tCode } from './i18n.js';
import { html, raw, fmtTime, fmtNum, href, reportError, toast, modalForm, askComment } from './ui.js';
import { prioBadge, stateBadge } from './alarms.js';
import { levelBadge } from './enterprises.js';
import {
  INCIDENT_STATUSES, DISPATCH_STATUSES, incStatusBadge, dispatchBadge, whoAmI, mayDispatch, actorName,
  countdown, resourcesTable, peopleTable, plansTable, recordFlags, km,
} from './response.js';

const REFRESH_MS = 10000;
const NEXT_DISPATCH = { requested: ['en_route', 'cancelled'], en_route: ['on_scene', 'cancelled'], on_scene: ['returned'], returned: [], cancelled: [] };

export function mountIncidents(root, query, id) {
  return id ? mountDetail(root, query, id) : mountList(root, query);
}

function clockCell(i) {
  const c = i.report_clock || {};
  if (c.reported_at) return html`<span class="rclock done${c.late ? ' late' : ''}">${t('inc.reported_at', { at: fmtTime(c.reported_at) })}${c.late ? ` · ${t('inc.late')}` : ''}</span>`;
  const rem = c.due_at ? (new Date(c.due_at).getTime() - Date.now()) / 1000 : c.remaining_s;
  return html`<span class="rclock${rem <= 0 ? ' overdue' : rem < 900 ? ' soon' : ''}" data-due="${c.due_at}">${rem <= 0 ? t('inc.report_overdue') : t('inc.report_left')} ${countdown(rem)}</span>`;
}

function tickClocks(root) {
  for (const el of root.querySelectorAll('.rclock[data-due]')) {
    const rem = (new Date(el.dataset.due).getTime() - Date.now()) / 1000;
    el.classList.toggle('overdue', rem <= 0);
    el.classList.toggle('soon', rem > 0 && rem < 900);
    const big = el.querySelector('.big');
    if (big) big.textContent = countdown(rem);
    else el.textContent = `${rem <= 0 ? t('inc.report_overdue') : t('inc.report_left')} ${countdown(rem)}`;
  }
}

function mountList(root, query) {
  let status = query.status || '';
  let items = [];
  let timer = null;
  let disposed = false;
  let failing = false;
  root.innerHTML = html`
    <section class="incidents page">
      <div class="toolbar">
        <h1>${t('inc.title')}</h1>
        <label>${t('col.state')}<select id="f-status"><option value="">${t('filter.all')}</option>
          ${INCIDENT_STATUSES.map((s) => html`<option value="${s}">${tCode('ist', s)}</option>`)}</select></label>
        <span class="spacer"></span>
        <button class="btn btn-primary" type="button" id="new">${t('inc.new')}</button>
      </div>
      <div class="panel"><div class="panel-head"><h2>${t('inc.list')}</h2><span class="muted" id="count"></span></div>
        <div id="list"><div class="muted pad">${t('point.loading')}</div></div></div>
    </section>`.__raw;
  const $ = (i) => root.querySelector('#' + i);
  document.title = `${t('inc.title')} · hazmon`;
  $('f-status').value = status;
  $('f-status').addEventListener('change', (e) => {
    status = e.target.value;
    history.replaceState(null, '', href(['incidents'], { status }));
    refresh();
  });
  $('new').addEventListener('click', async () => {
    const id = await newIncidentDialog({});
    if (id) location.hash = href(['incidents', id]);
  });
  whoAmI().then((me) => { if (!disposed) $('new').hidden = !mayDispatch(me); }).catch(() => {});

  async function refresh() {
    clearTimeout(timer);
    try {
      const r = await endpoints.incidents({ status });
      if (disposed) return;
      items = r.items || [];
      failing = false;
      render();
    } catch (err) {
      if (!failing) reportError(err);
      failing = true;
    }
    if (!disposed) timer = setTimeout(refresh, REFRESH_MS);
  }

  function render() {
    $('count').textContent = t('hs.count', { n: items.length });
    if (!items.length) { $('list').innerHTML = html`<div class="empty">${t('inc.empty')}</div>`.__raw; return; }
    $('list').innerHTML = html`
      <table class="grid inc-table">
        <thead><tr><th class="num">#</th><th class="c-time">${t('inc.occurred')}</th><th>${t('inc.title_col')}</th><th>${t('col.enterprise')}</th>
          <th>${t('col.hazard')}</th><th>${t('col.state')}</th><th>${t('inc.clock')}</th><th>${t('inc.opened_by')}</th></tr></thead>
        <tbody>${items.map((i) => html`<tr data-id="${i.id}" class="inc-row ist-row-${i.status}${i.report_clock && i.report_clock.overdue ? ' overdue-row' : ''}">
          <td class="num">${i.id}</td><td class="c-time">${fmtTime(i.occurred_at)}</td>
          <td><a href="${href(['incidents', i.id])}">${i.title}</a>${i.rule ? html` <span class="badge rule">${tCode('rule', i.rule)}</span>` : ''}</td>
          <td>${i.enterprise_name || i.enterprise}</td>
          <td>${i.hazard_source ? html`${i.hazard_source_name || i.hazard_source} ${levelBadge(i.level)}` : ''}</td>
          <td>${incStatusBadge(i.status)}</td>
          <td>${i.status === 'closed' && !(i.report_clock || {}).reported_at ? '' : clockCell(i)}</td>
          <td>${actorName(i.opened_by)}</td></tr>`)}</tbody>
      </table>`.__raw;
  }
  $('list').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-id]');
    if (tr && !e.target.closest('a')) location.hash = href(['incidents', tr.dataset.id]);
  });
  refresh();
  const tick = setInterval(() => tickClocks(root), 1000);
  return () => { disposed = true; clearTimeout(timer); clearInterval(tick); };
}

/**
 * Ask for a new incident's title (and note) and open it. `alarms` (optional) are alarm
 * rows of one enterprise; without them the enterprise is asked for. Resolves to the id.
 */
export async function newIncidentDialog({ alarms = [], enterprise = '' }) {
  const ent = enterprise || (alarms[0] && alarms[0].enterprise) || '';
  const first = alarms[0];
  const answer = await modalForm({
    title: alarms.length ? t('inc.from_alarms', { n: alarms.length }) : t('inc.new'), confirm: t('inc.open'), wide: true,
    body: html`
      ${ent && alarms.length ? html`<input type="hidden" name="enterprise" value="${ent}"><div>${t('col.enterprise')}: <strong>${ent}</strong></div>`
        : html`<label>${t('col.enterprise')}<input name="enterprise" value="${ent}" required maxlength="64"></label>`}
      ${alarms.length ? html`<ul class="small">${alarms.map((a) => html`<li>${a.tag || a.gateway || ''} <span class="cond">${a.condition}</span> ${fmtTime(a.activated_at)}</li>`)}</ul>` : ''}
      <label>${t('inc.title_col')}<input name="title" required maxlength="200" value="${first ? `${first.hazard_source_name || first.hazard_source || first.enterprise} ${first.tag || ''} ${first.condition}` : ''}"></label>
      <label>${t('inc.note')}<textarea name="note" rows="3" maxlength="4000"></textarea></label>`,
    collect(form) {
      const f = form.elements;
      const title = f.title.value.trim();
      const e = f.enterprise.value.trim();
      if (!title || !e) return { error: t('inc.need_title') };
      return { enterprise: e, title, note: f.note.value.trim() || undefined, alarm_ids: alarms.map((a) => a.id) };
    },
  });
  if (!answer) return null;
  try {
    const r = await endpoints.openIncident(answer);
    toast(t('inc.opened', { id: r.id }), 'ok');
    return r.id;
  } catch (err) {
    reportError(err);
    return null;
  }
}

function mountDetail(root, query, id) {
  let inc = null;
  let me = null;
  let nearby = [];
  let timer = null;
  let disposed = false;
  let failing = false;
  root.innerHTML = html`
    <section class="incident page">
      <nav class="crumbs"><a href="#/incidents">${t('inc.title')}</a> › <strong>#${id}</strong></nav>
      <div id="head"><div class="muted">${t('point.loading')}</div></div>
      <div class="inc-grid">
        <div class="inc-col">
          <div class="panel"><div class="panel-head"><h2>${t('inc.timeline')}</h2><span class="spacer"></span>
            <button class="btn btn-sm" type="button" id="add-note">${t('inc.add_note')}</button></div>
            <div class="pad note-form" id="note-form">
              <textarea id="note-text" rows="2" maxlength="4000" placeholder="${t('inc.note_ph')}"></textarea>
              <div class="acts"><select id="note-kind"><option value="note">${t('tl.note')}</option><option value="notification">${t('tl.notification')}</option></select>
                <button class="btn btn-primary" type="button" id="note-save">${t('inc.save_note')}</button></div>
            </div>
            <div id="timeline"></div></div>
          <div class="panel"><div class="panel-head"><h2>${t('inc.alarms')}</h2></div><div id="alarms"></div></div>
        </div>
        <div class="inc-col">
          <div class="panel"><div class="panel-head"><h2>${t('inc.dispatches')}</h2></div><div id="dispatches"></div></div>
          <div class="panel"><div class="panel-head"><h2>${t('inc.nearby')}</h2></div><div id="nearby"></div></div>
          <div class="panel"><div class="panel-head"><h2>${t('inc.record')}</h2></div><div id="record"></div></div>
        </div>
      </div>
    </section>`.__raw;
  const $ = (i) => root.querySelector('#' + i);
  document.title = `#${id} · ${t('inc.title')} · hazmon`;

  async function refresh() {
    clearTimeout(timer);
    try {
      const r = await endpoints.incident(id);
      if (disposed) return;
      const firstTime = !inc;
      inc = r;
      if (firstTime && inc.hazard_source) {
        endpoints.nearbyResources(inc.enterprise, inc.hazard_source, { limit: 8 })
          .then((n) => { nearby = n.items || []; if (!disposed) renderNearby(); }).catch(() => {});
      }
      failing = false;
      render();
    } catch (err) {
      if (err.status === 404) {
        $('head').innerHTML = html`<div class="err">${err.message}</div>`.__raw;
        root.querySelector('.inc-grid').hidden = true;
        reportError(err);
        return;
      }
      if (!failing) reportError(err);
      failing = true;
    }
    if (!disposed) timer = setTimeout(refresh, REFRESH_MS);
  }
  whoAmI().then((m) => { me = m; if (!disposed && inc) render(); }).catch(() => {});

  function render() {
    renderHead();
    renderTimeline();
    renderAlarms();
    renderDispatches();
    renderNearby();
    renderRecord();
    const can = mayDispatch(me) && inc.status !== 'closed';
    $('add-note').hidden = !mayDispatch(me);
    if (!can) $('note-form').hidden = true;
  }

  function renderHead() {
    const c = inc.report_clock || {};
    const can = mayDispatch(me);
    const rem = (new Date(c.due_at).getTime() - Date.now()) / 1000;
    $('head').innerHTML = html`
      <div class="inc-head">
        <div class="inc-card">
          <div class="inc-title"><span class="code">#${inc.id}</span> <span class="hs-name" id="inc-title">${inc.title}</span> ${incStatusBadge(inc.status)}</div>
          <div class="muted">${inc.enterprise_name || inc.enterprise} (${inc.enterprise})
            ${inc.hazard_source ? html` › <a href="${href(['hazard', inc.enterprise, inc.hazard_source])}">${inc.hazard_source_name || inc.hazard_source}</a> ${levelBadge(inc.level)}` : ''}</div>
          <div class="muted small">${t('inc.occurred')}: ${fmtTime(inc.occurred_at)} · ${t('inc.opened')}: ${fmtTime(inc.opened_at)} · ${inc.rule ? tCode('rule', inc.rule) : actorName(inc.opened_by)}</div>
          <div class="acts inc-acts">
            ${can && inc.status !== 'closed' ? html`
              ${inc.status === 'open' ? html`<button class="btn btn-sm" type="button" data-status="responding">${t('inc.to_responding')}</button>` : ''}
              <button class="btn btn-sm" type="button" data-status="closed">${t('inc.close')}</button>` : ''}
            <button class="btn btn-sm" type="button" id="export-html">${t('inc.export_html')}</button>
            <button class="btn btn-sm" type="button" id="export-pdf">${t('inc.export_pdf')}</button>
          </div>
        </div>
        <div class="rclock-card${c.reported_at ? (c.late ? ' late' : ' done') : rem <= 0 ? ' overdue' : ''}" id="report-clock">
          <div class="l">${t('inc.clock_title')}</div>
          ${c.reported_at ? html`
            <div class="big-ok">${t('inc.reported')}</div>
            <div class="small">${fmtTime(c.reported_at)} · ${actorName(inc.reported_by)} → ${inc.report_to || ''}${c.late ? html` <span class="flag flag-red">${t('inc.late')}</span>` : ''}</div>`
          : html`
            <div class="rclock${rem <= 0 ? ' overdue' : rem < 900 ? ' soon' : ''}" data-due="${c.due_at}"><span class="big">${countdown(rem)}</span></div>
            <div class="small">${t('inc.due_at')} ${fmtTime(c.due_at)}${rem <= 0 ? html` · <strong class="err">${t('inc.report_overdue')}</strong>` : ''}</div>
            ${can ? html`<button class="btn btn-primary" type="button" id="reported">${t('inc.mark_reported')}</button>` : ''}`}
        </div>
      </div>`.__raw;
  }

  function renderTimeline() {
    const items = inc.timeline || [];
    $('timeline').innerHTML = items.length ? html`
      <ol class="timeline">${items.map((e) => html`<li class="tl tl-${e.kind}" data-kind="${e.kind}">
        <span class="tl-time">${fmtTime(e.at)}</span>
        <span class="badge tl-kind">${tCode('tl', e.kind)}</span>
        <span class="tl-actor">${actorName(e.actor)}</span>
        <div class="tl-text">${e.text}</div></li>`)}</ol>` .__raw
      : html`<div class="muted pad">${t('log.empty')}</div>`.__raw;
  }

  function renderAlarms() {
    const items = inc.alarms || [];
    $('alarms').innerHTML = items.length ? html`
      <table class="grid">
        <thead><tr><th class="c-time">${t('col.time')}</th><th>${t('col.tag')}</th><th>${t('col.condition')}</th><th>${t('col.priority')}</th>
          <th>${t('col.state')}</th><th class="num">${t('col.value')}</th></tr></thead>
        <tbody>${items.map((a) => html`<tr>
          <td class="c-time">${fmtTime(a.activated_at)}</td>
          <td>${a.tag ? html`<a class="tag" href="${href(['point', a.enterprise, a.tag])}">${a.tag}</a>` : a.gateway || ''}</td>
          <td><span class="cond">${a.condition}</span></td><td>${prioBadge(a.priority)}</td><td>${stateBadge(a.state, a)}</td>
          <td class="num">${fmtNum(a.value)}</td></tr>`)}</tbody>
      </table>`.__raw : html`<div class="muted pad">${t('inc.no_alarms')}</div>`.__raw;
  }

  function renderDispatches() {
    const items = inc.dispatches || [];
    const can = mayDispatch(me) && inc.status !== 'closed';
    $('dispatches').innerHTML = html`
      ${items.length ? html`<table class="grid disp-table">
        <thead><tr><th class="c-time">${t('inc.dispatched_at')}</th><th>${t('inc.resource')}</th><th>${t('inc.what')}</th>
          <th class="num">${t('res.distance')}</th><th>${t('col.state')}</th><th></th></tr></thead>
        <tbody>${items.map((d) => html`<tr data-dispatch="${d.id}">
          <td class="c-time">${fmtTime(d.dispatched_at)}<div class="sub muted">${actorName(d.dispatched_by)}</div></td>
          <td>${d.resource_name}</td><td>${d.what}${d.quantity !== null && d.quantity !== undefined ? ` × ${fmtNum(d.quantity)}` : ''}${d.note ? html`<div class="sub muted">${d.note}</div>` : ''}</td>
          <td class="num">${km(d.distance_km)}</td>
          <td>${dispatchBadge(d.status)}<div class="sub muted">${fmtTime(d.status_at)}</div></td>
          <td class="c-act"><span class="acts">${can ? (NEXT_DISPATCH[d.status] || []).map((s) => html`<button class="btn btn-sm" type="button" data-dstatus="${s}" data-did="${d.id}">${tCode('dst', s)}</button>`) : ''}</span></td>
        </tr>`)}</tbody></table>` : html`<div class="muted pad">${t('inc.no_dispatches')}</div>`}
      ${can ? html`<div class="pad"><button class="btn" type="button" id="dispatch-other">${t('inc.dispatch_other')}</button></div>` : ''}`.__raw;
  }

  function renderNearby() {
    if (!inc) return;
    const can = mayDispatch(me) && inc.status !== 'closed';
    $('nearby').innerHTML = inc.hazard_source
      ? resourcesTable(nearby, { actions: can ? (r) => html`<button class="btn btn-sm btn-primary" type="button" data-send="${r.id}">${t('inc.dispatch')}</button>` : null }).__raw
      : html`<div class="muted pad">${t('inc.no_source')}</div>`.__raw;
  }

  function renderRecord() {
    const r = inc.hazard_record;
    if (!r) { $('record').innerHTML = html`<div class="muted pad">${t('inc.no_source')}</div>`.__raw; return; }
    $('record').innerHTML = html`
      <div class="pad"><div class="hs-flags">${recordFlags(r.flags)}</div>
        <div class="small muted">${t('rec.coords')}: ${r.lat !== null && r.lat !== undefined ? `${fmtNum(r.lat)}, ${fmtNum(r.lon)}` : '—'}</div></div>
      <h3 class="pad-x">${t('hs.people')}</h3>${peopleTable(r.responsibles)}
      <h3 class="pad-x">${t('rec.plans')}</h3>${plansTable(r.plans)}`.__raw;
  }

  root.addEventListener('click', async (e) => {
    if (!inc) return;
    const b = e.target.closest('button');
    if (!b) return;
    try {
      if (b.id === 'export-html' || b.id === 'export-pdf') {
        const w = window.open('', '_blank');
        await openBlob(`/api/v1/incidents/${encodeURIComponent(id)}/export`, { format: b.id === 'export-pdf' ? 'pdf' : 'html' }, w);
      } else if (b.id === 'add-note') {
        $('note-form').hidden = false;
        $('note-text').focus();
      } else if (b.id === 'note-save') {
        const text = $('note-text').value.trim();
        if (!text) { $('note-text').focus(); return; }
        await endpoints.incidentPost(id, 'notes', { text, kind: $('note-kind').value });
        $('note-text').value = '';
        toast(t('inc.note_saved'), 'ok');
        refresh();
      } else if (b.dataset.status) {
        const comment = await askComment({ title: t('inc.status_to', { s: tCode('ist', b.dataset.status) }), label: t('log.comment'), confirm: t('mode.confirm') });
        if (comment === null) return;
        await endpoints.incidentPost(id, 'status', { status: b.dataset.status, comment: comment || undefined });
        refresh();
      } else if (b.id === 'reported') {
        const a = await modalForm({
          title: t('inc.mark_reported'), confirm: t('inc.mark_reported'),
          body: html`<label>${t('inc.report_to')}<input name="to" value="县级应急管理部门" maxlength="200" required></label>
            <label>${t('inc.note')}<textarea name="note" rows="3" maxlength="4000"></textarea></label>`,
          collect: (form) => ({ to: form.elements.to.value.trim() || '县级应急管理部门', note: form.elements.note.value.trim() || undefined }),
        });
        if (!a) return;
        await endpoints.incidentPost(id, 'report', a);
        toast(t('inc.reported'), 'ok');
        refresh();
      } else if (b.dataset.send || b.id === 'dispatch-other') {
        const r = nearby.find((x) => String(x.id) === b.dataset.send);
        const a = await askDispatch(r);
        if (!a) return;
        await endpoints.incidentPost(id, 'dispatches', a);
        toast(t('inc.dispatched'), 'ok');
        refresh();
      } else if (b.dataset.dstatus) {
        await endpoints.dispatchStatus(id, b.dataset.did, { status: b.dataset.dstatus });
        refresh();
      }
    } catch (err) { reportError(err); }
  });

  function askDispatch(resource) {
    return modalForm({
      title: t('inc.dispatch'), confirm: t('inc.dispatch'), wide: true,
      body: html`
        ${resource ? html`<div>${t('inc.resource')}: <strong>${resource.name}</strong> · ${km(resource.distance_km)} · ${resource.contact_name || ''} ${resource.contact_phone || ''}</div>`
          : html`<label>${t('inc.resource')}<input name="resource_name" maxlength="200" required></label>`}
        <label>${t('inc.what')}<input name="what" maxlength="2000" required value="${resource ? resource.name : ''}"></label>
        <label>${t('res.quantity')}<input name="quantity" type="number" min="0" step="any"></label>
        <label>${t('inc.note')}<textarea name="note" rows="2" maxlength="2000"></textarea></label>`,
      collect(form) {
        const f = form.elements;
        const what = f.what.value.trim();
        if (!what) return { error: t('inc.need_what') };
        const out = { what, note: f.note.value.trim() || undefined };
        if (f.quantity.value !== '') out.quantity = Number(f.quantity.value);
        if (resource) out.resource_id = resource.id;
        else {
          out.resource_name = f.resource_name.value.trim();
          if (!out.resource_name) return { error: t('inc.need_what') };
        }
        return out;
      },
    });
  }

  refresh();
  const tick = setInterval(() => tickClocks(root), 1000);
  return () => { disposed = true; clearTimeout(timer); clearInterval(tick); };
}

export { raw };
