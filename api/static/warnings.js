// Risk warnings page (风险预警): the red/orange/yellow/blue colour per enterprise and hazard
// source, the list with filters (state, colour, enterprise; kept in the URL), and a warning's
// detail: its closed loop (issued → acknowledged → disposal feedback → cleared/消警) with each
// step's deadline (overdue marked), the actions the caller's role allows, attachments, event log.
//
// Routes: #/warnings (?state=&color=&enterprise=&id=)

import { endpoints, openBlob, uploadFile } from './api.js';
import { t, tCode } from './i18n.js';
import { html, raw, fmtTime, href, reportError, toast, modalForm, askComment } from './ui.js';
import { enterpriseName, loadEnterprises } from './names.js';
import { levelBadge } from './enterprises.js';
import {
  COLORS, WARNING_STATES, colorBadge, wStateBadge, whoAmI, mayStep, actorName, dueText,
} from './response.js';

const REFRESH_MS = 10000;
const STEP_LABEL = { acknowledge: 'wr.act.ack', feedback: 'wr.act.feedback', clear: 'wr.act.clear' };
const STEP_PATH = { acknowledge: 'ack', feedback: 'feedback', clear: 'clear' };

export function mountWarnings(root, query) {
  const f = { state: query.state ?? 'open', color: query.color || '', enterprise: query.enterprise || '' };
  let selectedId = query.id ? String(query.id) : null;
  let items = [];
  let summary = [];
  let detail = null;
  let me = null;
  let timer = null;
  let disposed = false;
  let failing = false;

  root.innerHTML = html`
    <section class="warnings page">
      <div class="toolbar">
        <h1>${t('wr.title')}</h1>
        <label>${t('col.state')}<select id="f-state">
          <option value="open">${t('wr.f.open')}</option><option value="">${t('filter.all')}</option>
          ${WARNING_STATES.map((s) => html`<option value="${s}">${tCode('wst', s)}</option>`)}</select></label>
        <label>${t('wr.color')}<select id="f-color"><option value="">${t('filter.all')}</option>
          ${COLORS.map((c) => html`<option value="${c}">${tCode('wc', c)}</option>`)}</select></label>
        <label>${t('col.enterprise')}<select id="f-ent"><option value="">${t('filter.all')}</option></select></label>
        <span class="spacer"></span>
        <a class="btn btn-sm" href="#/incidents">${t('nav.incidents')}</a>
      </div>
      <div class="wr-summary" id="summary"></div>
      <div class="wr-split">
        <div class="panel wr-list"><div class="panel-head"><h2>${t('wr.list')}</h2><span class="muted" id="count"></span></div>
          <div id="list"><div class="muted pad">${t('point.loading')}</div></div></div>
        <div class="panel wr-detail" id="detail"><div class="muted pad">${t('wr.pick')}</div></div>
      </div>
    </section>`.__raw;
  const $ = (id) => root.querySelector('#' + id);
  document.title = `${t('wr.title')} · hazmon`;
  $('f-state').value = f.state;
  $('f-color').value = f.color;

  function keepUrl() {
    const h = href(['warnings'], { state: f.state === 'open' ? '' : (f.state || 'all'), color: f.color, enterprise: f.enterprise, id: selectedId });
    history.replaceState(null, '', h);
  }
  if (query.state === 'all') { f.state = ''; $('f-state').value = ''; }

  for (const [id, key] of [['f-state', 'state'], ['f-color', 'color'], ['f-ent', 'enterprise']]) {
    $(id).addEventListener('change', (e) => { f[key] = e.target.value; keepUrl(); refresh(); });
  }

  loadEnterprises().then((ents) => {
    if (disposed) return;
    const sel = $('f-ent');
    for (const e of ents || []) {
      const o = document.createElement('option');
      o.value = e.code; o.textContent = e.name ? `${e.name} (${e.code})` : e.code;
      sel.appendChild(o);
    }
    sel.value = f.enterprise;
    renderSummary();
  }).catch(() => {});
  whoAmI().then((m) => { me = m; if (!disposed) renderDetail(); }).catch(() => {});

  async function refresh() {
    clearTimeout(timer);
    const [l, s] = await Promise.allSettled([
      endpoints.warnings({ state: f.state || undefined, color: f.color, enterprise: f.enterprise }),
      endpoints.warningSummary({ enterprise: f.enterprise }),
    ]);
    if (disposed) return;
    let err = null;
    if (l.status === 'fulfilled') items = l.value.items || []; else err = l.reason;
    if (s.status === 'fulfilled') summary = s.value.items || []; else err = err || s.reason;
    renderSummary();
    renderList();
    if (selectedId) await loadDetail();
    if (err && !failing) reportError(err);
    failing = !!err;
    timer = setTimeout(refresh, REFRESH_MS);
  }

  async function loadDetail() {
    const id = selectedId;
    try {
      const d = await endpoints.warning(id);
      if (disposed || id !== selectedId) return;
      detail = d;
    } catch (err) {
      if (id === selectedId) { detail = null; reportError(err); }
    }
    renderDetail();
  }

  function renderSummary() {
    const counts = Object.fromEntries(COLORS.map((c) => [c, 0]));
    for (const e of summary) {
      for (const h of e.hazard_sources) counts[h.color] = (counts[h.color] || 0) + 1;
      if (e.unassigned) counts[e.unassigned.color] = (counts[e.unassigned.color] || 0) + 1;
    }
    $('summary').innerHTML = html`
      <div class="wr-tiles">${COLORS.map((c) => html`
        <button type="button" class="tile wr-tile wc-tile-${c}${f.color === c ? ' on' : ''}" data-color="${c}">
          <span class="n">${counts[c]}</span><span class="l">${tCode('wc', c)}${t('wr.warning_suffix')}</span></button>`)}
      </div>
      <div class="wr-ents">${summary.length ? summary.map((e) => html`
        <div class="wr-ent wc-edge-${e.color}" data-ent="${e.enterprise}">
          <div class="wr-ent-head">${colorBadge(e.color)} <strong>${enterpriseName(e.enterprise) || e.enterprise}</strong> <span class="code">${e.enterprise}</span></div>
          <div class="wr-hs">${e.hazard_sources.map((h) => html`
            <a href="#" class="wr-hs-item" data-wid="${h.warning_id}">${colorBadge(h.color)} ${h.name || h.code} ${levelBadge(h.level)} ${wStateBadge(h.state)}</a>`)}
            ${e.unassigned ? html`<a href="#" class="wr-hs-item" data-wid="${e.unassigned.warning_id}">${colorBadge(e.unassigned.color)} ${t('wr.unassigned')} ${wStateBadge(e.unassigned.state)}</a>` : ''}
          </div></div>`) : html`<div class="muted pad">${t('wr.none_open')}</div>`}</div>`.__raw;
  }

  $('summary').addEventListener('click', (e) => {
    const tile = e.target.closest('[data-color].wr-tile');
    if (tile) { f.color = f.color === tile.dataset.color ? '' : tile.dataset.color; $('f-color').value = f.color; keepUrl(); refresh(); return; }
    const a = e.target.closest('[data-wid]');
    if (a) { e.preventDefault(); select(a.dataset.wid); }
  });

  function renderList() {
    $('count').textContent = t('hs.count', { n: items.length });
    if (!items.length) { $('list').innerHTML = html`<div class="empty">${t('wr.empty')}</div>`.__raw; return; }
    $('list').innerHTML = html`
      <table class="grid wr-table">
        <thead><tr><th>${t('wr.color')}</th><th class="c-time">${t('wr.issued_at')}</th><th>${t('col.enterprise')}</th><th>${t('col.hazard')}</th>
          <th>${t('col.state')}</th><th>${t('wr.next_step')}</th></tr></thead>
        <tbody>${items.map((w) => {
          const due = dueText(w.due_at);
          return html`<tr data-id="${w.id}" data-color="${w.color}" class="wr-row wc-row-${w.color}${String(w.id) === selectedId ? ' sel' : ''}${w.step_overdue ? ' overdue-row' : ''}">
            <td>${colorBadge(w.color)}${w.live_color && w.live_color !== w.color ? html` <span class="muted small">${t('wr.now')} ${tCode('wc', w.live_color)}</span>` : ''}</td>
            <td class="c-time">${fmtTime(w.issued_at)}</td>
            <td>${enterpriseName(w.enterprise) || w.enterprise}</td>
            <td>${w.hazard_source ? html`${w.hazard_source_name || w.hazard_source} ${levelBadge(w.level)}` : html`<span class="muted">${t('wr.unassigned')}</span>`}</td>
            <td>${wStateBadge(w.state)}</td>
            <td>${w.step ? html`${t(STEP_LABEL[w.step])} <span class="due ${due.cls}">${due.text}</span>` : ''}</td>
          </tr>`;
        })}</tbody>
      </table>`.__raw;
  }

  $('list').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-id]');
    if (tr) select(tr.dataset.id);
  });

  function select(id) {
    selectedId = String(id);
    detail = null;
    keepUrl();
    renderList();
    $('detail').innerHTML = html`<div class="muted pad">${t('point.loading')}</div>`.__raw;
    loadDetail();
  }

  function stepRows(w) {
    // Each step: when it was done and by whom, or its deadline (overdue marked).
    const overdue = new Map((w.overdue || []).map((o) => [o.step, o]));
    const done = {
      issued: { at: w.issued_at, by: 'system' },
      acknowledge: w.acked_at ? { at: w.acked_at, by: w.acked_by, text: w.ack_comment } : null,
      feedback: w.feedback_at ? { at: w.feedback_at, by: w.feedback_by, text: w.cause ? `${t('wr.cause')}: ${w.cause}\n${t('wr.action')}: ${w.action || ''}` : '' } : null,
      clear: w.cleared_at ? { at: w.cleared_at, by: w.cleared_by, text: w.clear_comment } : null,
    };
    const steps = [['issued', 'wr.step.issued'], ['acknowledge', 'wr.step.ack'], ['feedback', 'wr.step.feedback'], ['clear', 'wr.step.clear']];
    return html`<ol class="loop">${steps.map(([k, label]) => {
      const d = done[k];
      const od = overdue.get(k);
      const waiting = w.step === k;
      const due = waiting ? dueText(w.due_at) : null;
      return html`<li class="loop-step${d ? ' done' : ''}${waiting ? ' waiting' : ''}${(waiting && w.step_overdue) || od ? ' late' : ''}" data-step="${k}">
        <div class="loop-name">${t(label)}</div>
        ${d ? html`<div class="loop-when">${fmtTime(d.at)} · ${actorName(d.by)}</div>${d.text ? html`<div class="loop-text">${d.text}</div>` : ''}` : ''}
        ${waiting ? html`<div class="loop-due ${due.cls}">${t('wr.due_at')} ${fmtTime(w.due_at)} · <span class="due ${due.cls}">${due.text}</span></div>` : ''}
        ${od ? html`<div class="loop-due overdue">${t('wr.was_overdue', { at: fmtTime(od.due_at) })}</div>` : ''}
      </li>`;
    })}</ol>`;
  }

  function renderDetail() {
    const el = $('detail');
    if (!selectedId) return;
    if (!detail) return;
    const w = detail;
    const can = (step) => w.step === step && mayStep(me, step);
    el.innerHTML = html`
      <div class="panel-head"><h2>${t('wr.detail')} #${w.id}</h2> ${colorBadge(w.color)} ${wStateBadge(w.state)}
        <span class="spacer"></span>
        ${w.hazard_source ? html`<a class="btn btn-sm" href="${href(['hazard', w.enterprise, w.hazard_source])}">${t('wr.to_hazard')}</a>` : ''}
        <a class="btn btn-sm" href="${href(['alarms'], { enterprise: w.enterprise, hazard_source: w.hazard_source })}">${t('hs.on_board')}</a></div>
      <div class="pad">
        <div class="wr-where"><strong>${enterpriseName(w.enterprise) || w.enterprise}</strong>
          ${w.hazard_source ? html` › ${w.hazard_source_name || w.hazard_source} ${levelBadge(w.level)}` : ''}
          ${w.live_color && w.live_color !== w.color ? html` · ${t('wr.live')}: ${colorBadge(w.live_color)}` : ''}</div>
        ${w.reason ? html`<div class="wr-reason">${w.reason}</div>` : ''}
        ${stepRows(w)}
        <div class="acts wr-acts" id="acts">
          ${can('acknowledge') ? html`<button class="btn btn-ack" type="button" data-step="acknowledge">${t('wr.act.ack')}</button>` : ''}
          ${can('feedback') ? html`<button class="btn btn-primary" type="button" data-step="feedback">${t('wr.act.feedback')}</button>` : ''}
          ${can('clear') ? html`<button class="btn btn-primary" type="button" data-step="clear">${t('wr.act.clear')}</button>` : ''}
          ${w.state !== 'cleared' && mayStep(me, 'feedback') ? html`<label class="btn btn-sm upload">${t('wr.attach')}<input type="file" id="attach" hidden></label>` : ''}
          ${w.step && !mayStep(me, w.step) && me ? html`<span class="muted small">${t('wr.not_your_step', { role: me.role })}</span>` : ''}
        </div>
        <h3>${t('wr.attachments')}</h3>
        ${(w.attachments || []).length ? html`<ul class="attachments">${w.attachments.map((a) => html`
          <li><a href="#" data-att="${a.id}">${a.name}</a> <span class="muted small">${a.content_type} · ${Math.ceil(a.size / 1024)} KiB · ${fmtTime(a.uploaded_at)} · ${actorName(a.uploaded_by)}</span></li>`)}</ul>`
          : html`<div class="muted">${t('wr.no_attachments')}</div>`}
        <h3>${t('wr.events')}</h3>
        <table class="grid log-table wr-events">
          <thead><tr><th class="c-time">${t('log.at')}</th><th>${t('log.action')}</th><th>${t('log.change')}</th><th>${t('wr.color')}</th><th>${t('log.actor')}</th><th>${t('log.comment')}</th></tr></thead>
          <tbody>${(w.events || []).map((e) => html`<tr>
            <td class="c-time">${fmtTime(e.at)}</td><td>${tCode('wact', e.action)}</td>
            <td>${e.from_state ? tCode('wst', e.from_state) : '∅'} → ${tCode('wst', e.to_state)}</td>
            <td>${e.color ? colorBadge(e.color) : ''}</td><td>${actorName(e.actor)}</td><td class="pre">${e.comment || ''}</td></tr>`)}</tbody>
        </table>
      </div>`.__raw;
  }

  $('detail').addEventListener('click', async (e) => {
    const att = e.target.closest('[data-att]');
    if (att) {
      e.preventDefault();
      const w = window.open('', '_blank');
      openBlob(`/api/v1/warnings/${encodeURIComponent(detail.id)}/attachments/${encodeURIComponent(att.dataset.att)}`, null, w).catch(reportError);
      return;
    }
    const b = e.target.closest('button[data-step]');
    if (!b || !detail) return;
    const step = b.dataset.step;
    let body;
    if (step === 'feedback') {
      body = await askFeedback();
      if (!body) return;
    } else {
      const comment = await askComment({ title: t(STEP_LABEL[step]), label: t('log.comment'), confirm: t(STEP_LABEL[step]) });
      if (comment === null) return;
      body = comment ? { comment } : {};
    }
    try {
      const id = detail.id;
      const file = body.file;
      delete body.file;
      if (file) await uploadFile(`/api/v1/warnings/${encodeURIComponent(id)}/attachments`, file);
      await endpoints.warningStep(id, STEP_PATH[step], body);
      toast(t('wr.done', { step: t(STEP_LABEL[step]) }), 'ok');
      refresh();
    } catch (err) { reportError(err); }
  });

  $('detail').addEventListener('change', async (e) => {
    if (e.target.id !== 'attach' || !e.target.files.length || !detail) return;
    try {
      await uploadFile(`/api/v1/warnings/${encodeURIComponent(detail.id)}/attachments`, e.target.files[0]);
      toast(t('wr.attached'), 'ok');
      loadDetail();
    } catch (err) { reportError(err); }
  });

  function askFeedback() {
    return modalForm({
      title: t('wr.act.feedback'), confirm: t('wr.act.feedback'), wide: true,
      body: html`
        <label>${t('wr.cause')}<textarea name="cause" rows="3" maxlength="4000" required></textarea></label>
        <label>${t('wr.action')}<textarea name="action" rows="3" maxlength="4000" required></textarea></label>
        <label>${t('wr.attach_opt')}<input type="file" name="file"></label>`,
      collect(form) {
        const fe = form.elements;
        const cause = fe.cause.value.trim();
        const action = fe.action.value.trim();
        if (!cause || !action) return { error: t('wr.need_cause') };
        return { cause, action, file: fe.file.files[0] || null };
      },
    });
  }

  refresh();
  const tick = setInterval(() => { if (!disposed) { renderList(); if (detail) renderDetailDue(); } }, 30000);
  function renderDetailDue() { renderDetail(); }
  return () => { disposed = true; clearTimeout(timer); clearInterval(tick); };
}

export { raw };
