// Point page: configuration, latest value, trend with limit lines, alarm history.

import { endpoints } from './api.js';
import { t, tCode, getLang } from './i18n.js';
import { html, raw, fmtTime, fmtNum, href, loadScript, reportError, toDate } from './ui.js';
import {
  compareAlarms, isAckable, isUnacked, isShelvable, isUnshelvable, isResettable, prioClass, stateBadge,
  prioBadge, acknowledge, shelve, unshelve, reset,
} from './alarms.js';
import { eventLog } from './eventlog.js';
import { enterpriseName, hazardName, loadEnterprises, loadHazardSources } from './names.js';

const ECHARTS_SRC = '/static/vendor/echarts.min.js';

// Range -> span and bucket (seconds; null = raw readings) and refresh period.
export const RANGES = {
  '15m': { ms: 15 * 60e3, bucket: null, refresh: 5e3 },
  '1h': { ms: 60 * 60e3, bucket: null, refresh: 10e3 },
  '6h': { ms: 6 * 3600e3, bucket: 60, refresh: 30e3 },
  '24h': { ms: 24 * 3600e3, bucket: 300, refresh: 60e3 },
};

const LIMIT_STYLE = {
  hihi: { label: 'HIHI', color: '#ff4d4f', type: 'solid' },
  hi: { label: 'HI', color: '#ff9c2a', type: 'dashed' },
  lo: { label: 'LO', color: '#ff9c2a', type: 'dashed' },
  lolo: { label: 'LOLO', color: '#ff4d4f', type: 'solid' },
};

const num = (v) => (v === null || v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));

export function mountPoint(root, query, enterprise, tag) {
  let range = RANGES[query.range] ? query.range : '1h';
  let point = null;
  let alarms = [];
  let chart = null;
  let refreshTimer = null;
  let ctrl = null;
  let disposed = false;
  let rangeChanged = true;
  let failing = false;

  root.innerHTML = html`
    <section class="point">
      <nav class="crumbs">
        <a href="#/alarms">${t('nav.alarms')}</a> ›
        <a href="#/enterprises?open=${encodeURIComponent(enterprise)}" id="crumb-ent">${enterprise}</a> ›
        <strong>${tag}</strong>
      </nav>
      <div class="point-head" id="head"><div class="muted">${t('point.loading')}</div></div>
      <div class="panel">
        <div class="panel-head">
          <h2>${t('point.trend')}</h2>
          <div class="seg" id="ranges">
            ${Object.keys(RANGES).map((r) => html`<button type="button" class="btn${r === range ? ' on' : ''}" data-range="${r}">${t('point.range.' + r)}</button>`)}
          </div>
          <span class="muted" id="trend-note"></span>
        </div>
        <div class="chart" id="chart"></div>
      </div>
      <div class="panel">
        <div class="panel-head"><h2>${t('point.history')}</h2></div>
        <div id="history"><div class="muted">${t('point.loading')}</div></div>
      </div>
    </section>`.__raw;

  const $ = (id) => root.querySelector('#' + id);
  document.title = `${tag} · hazmon`;

  loadEnterprises().then(() => {
    const n = enterpriseName(enterprise);
    if (n && !disposed) $('crumb-ent').textContent = `${n} (${enterprise})`;
  }).catch(() => {});

  $('ranges').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-range]');
    if (!b || b.dataset.range === range) return;
    range = b.dataset.range;
    rangeChanged = true;
    failing = false;
    for (const x of $('ranges').children) x.classList.toggle('on', x.dataset.range === range);
    history.replaceState(null, '', href(['point', enterprise, tag], { range }));
    refresh();
  });

  const openLogs = new Set();   // alarm ids whose event log is shown
  $('history').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const a = alarms.find((x) => String(x.id) === b.dataset.id);
    if (!a) return;
    const act = b.dataset.act;
    if (act === 'log') {
      if (openLogs.has(a.id)) openLogs.delete(a.id); else openLogs.add(a.id);
      renderHistory();
      return;
    }
    let n = 0;
    if (act === 'ack') n = await acknowledge([a.id]);
    else if (act === 'shelve') n = await shelve([a]);
    else if (act === 'unshelve') n = await unshelve([a.id]);
    else if (act === 'reset') n = await reset([a.id]);
    if (n) refresh();
  });

  const onResize = () => chart && chart.resize();
  window.addEventListener('resize', onResize);

  async function refresh() {
    clearTimeout(refreshTimer);
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    const spec = RANGES[range];
    const end = new Date();
    const start = new Date(end.getTime() - spec.ms);
    const readingsQuery = { start: start.toISOString(), end: new Date(end.getTime() + 1000).toISOString(), bucket: spec.bucket || undefined };
    const [p, r, a, lib] = await Promise.allSettled([
      endpoints.point(enterprise, tag, signal),
      endpoints.readings(enterprise, tag, readingsQuery, signal),
      endpoints.alarms({ enterprise, tag }, signal),
      loadScript(ECHARTS_SRC),
    ]);
    if (disposed || signal.aborted) return;
    let firstError = null;
    if (a.status === 'fulfilled') { alarms = (a.value && a.value.items) || []; renderHistory(); } else firstError = a.reason;
    if (p.status === 'fulfilled') { point = p.value; renderHead(); } else firstError = firstError || p.reason;
    if (lib.status === 'rejected') firstError = firstError || lib.reason;
    else if (r.status === 'fulfilled') renderChart((r.value && r.value.items) || [], start, end, spec.bucket);
    else firstError = firstError || r.reason;
    if (p.status === 'rejected' && p.reason.status === 404) {
      // No such point: say so once and stop refreshing.
      reportError(p.reason);
      $('head').innerHTML = html`<div class="err">${t('point.not_found')}: ${enterprise} / ${tag}</div>`.__raw;
      for (const el of root.querySelectorAll('.panel')) el.hidden = true;
      return;
    }
    if (a.status === 'rejected' && !alarms.length) $('history').innerHTML = html`<div class="err pad">${a.reason.message || ''}</div>`.__raw;
    // Tell the user when loading starts failing, not at every automatic refresh.
    if (firstError && !failing) reportError(firstError);
    failing = !!firstError;
    refreshTimer = setTimeout(refresh, spec.refresh);
  }

  function renderHead() {
    const p = point || {};
    const latest = p.latest || null;
    const hs = p.hazard_source ? (hazardName(enterprise, p.hazard_source) || p.hazard_source) : '';
    if (p.hazard_source && !hazardName(enterprise, p.hazard_source)) {
      loadHazardSources(enterprise).then(() => { if (!disposed) renderHead(); }).catch(() => {});
    }
    const lim = (k) => (num(p[k]) === null ? '—' : fmtNum(p[k]));
    const openAlarms = alarms.filter((x) => x.state !== 'CLOSED');
    const worst = openAlarms.sort(compareAlarms)[0];
    const unit = p.unit || '';
    const qualityBad = latest && latest.quality === 'bad';
    const sec = (v) => (num(v) === null ? '—' : t('point.seconds', { n: fmtNum(v) }));
    $('head').innerHTML = html`
      <div class="latest${worst ? ' prio-' + prioClass(worst.priority) : ''}${qualityBad ? ' bad' : ''}">
        <div class="tagname">${p.tag || tag}${p.in_service === false ? html` <span class="badge st st-OUT_OF_SERVICE">${t('point.out_of_service')}</span>` : ''}</div>
        <div class="pname">${p.name || ''}</div>
        ${latest
          ? html`<div class="big">${fmtNum(latest.value)}<span class="unit">${unit}</span></div>
             <div class="muted">${fmtTime(latest.ts)} · ${tCode('point.quality', latest.quality || 'good')}</div>`
          : html`<div class="big muted">—</div><div class="muted">${t('point.no_latest')}</div>`}
        ${worst ? html`<div class="worst">${isUnacked(worst) ? raw('<span class="dot"></span>') : ''}<span class="cond">${worst.condition}</span> ${stateBadge(worst.state)}</div>` : ''}
      </div>
      <dl class="cfg">
        <dt>${t('point.kind')}</dt><dd>${tCode('kind', p.kind) || '—'}</dd>
        <dt>${t('point.unit')}</dt><dd>${unit || '—'}</dd>
        <dt>${t('point.hazard')}</dt><dd>${p.hazard_source ? html`<a href="${href(['hazard', enterprise, p.hazard_source])}">${hs}</a>` : '—'}${hs && hs !== p.hazard_source ? html` <span class="code">${p.hazard_source}</span>` : ''}</dd>
        <dt>${t('point.range')}</dt><dd>${lim('range_low')} … ${lim('range_high')}</dd>
        <dt>${t('point.limits')}</dt>
        <dd class="limits">
          <span class="lim lolo">LOLO ${lim('lolo')}</span><span class="lim lo">LO ${lim('lo')}</span>
          <span class="lim hi">HI ${lim('hi')}</span><span class="lim hihi">HIHI ${lim('hihi')}</span>
        </dd>
        <dt>${t('point.deadband')}</dt><dd>${num(p.deadband) === null ? '—' : fmtNum(p.deadband)}</dd>
        <dt>${t('point.on_delay')} / ${t('point.off_delay')}</dt><dd>${sec(p.on_delay_s)} / ${sec(p.off_delay_s)}</dd>
        <dt>${t('point.roc')}</dt><dd>${num(p.roc_per_min) === null ? '—' : t('point.per_min', { n: fmtNum(p.roc_per_min) })}</dd>
        <dt>${t('point.stale')}</dt><dd>${sec(p.stale_s)}</dd>
      </dl>`.__raw;
  }

  function renderHistory() {
    if (!alarms.length) {
      $('history').innerHTML = html`<div class="muted pad">${t('point.no_alarms')}</div>`.__raw;
      return;
    }
    const sorted = [...alarms].sort((x, y) => (x.state === 'CLOSED') - (y.state === 'CLOSED') || compareAlarms(x, y));
    const btn = (act, id, label, cls = 'btn btn-sm') => html`<button class="${cls}" type="button" data-act="${act}" data-id="${id}">${label}</button>`;
    $('history').innerHTML = html`
      <table class="alarms compact">
        <thead><tr>
          <th class="c-dot"></th><th class="c-time">${t('col.time')}</th><th class="c-time">${t('col.cleared')}</th>
          <th>${t('col.condition')}</th><th>${t('col.priority')}</th><th>${t('col.state')}</th>
          <th class="num">${t('col.value')}</th><th class="num">${t('col.limit')}</th>
          <th class="c-time">${t('col.acked')}</th><th>${t('col.acked_by')}</th><th class="c-act">${t('col.action')}</th>
        </tr></thead>
        <tbody>${sorted.map((a) => html`
          <tr class="prio-${prioClass(a.priority)}${isUnacked(a) ? ' unack' : ''}${a.state === 'CLOSED' ? ' closed' : ''}" data-id="${a.id}">
            <td class="c-dot">${isUnacked(a) ? raw('<span class="dot"></span>') : ''}</td>
            <td class="c-time">${fmtTime(a.activated_at)}</td>
            <td class="c-time">${fmtTime(a.cleared_at)}</td>
            <td><span class="cond">${a.condition}</span></td>
            <td>${prioBadge(a.priority)}</td>
            <td>${stateBadge(a.state, a)}</td>
            <td class="num">${fmtNum(a.value)}</td>
            <td class="num">${fmtNum(a.limit)}</td>
            <td class="c-time">${fmtTime(a.acked_at)}</td>
            <td>${a.acked_by || ''}</td>
            <td class="c-act"><span class="acts">
              ${isAckable(a) ? btn('ack', a.id, t('ack.one'), 'btn btn-ack') : ''}
              ${isShelvable(a) ? btn('shelve', a.id, t('shelve.one')) : ''}
              ${isUnshelvable(a) ? btn('unshelve', a.id, t('unshelve.one')) : ''}
              ${isResettable(a) ? btn('reset', a.id, t('reset.one')) : ''}
              ${btn('log', a.id, openLogs.has(a.id) ? t('log.hide') : t('log.show'), 'btn btn-sm btn-ghost')}
            </span></td>
          </tr>
          ${openLogs.has(a.id) ? html`<tr class="log-row"><td colspan="11"><div class="log" data-log="${a.id}">${t('point.loading')}</div></td></tr>` : ''}`)}
        </tbody>
      </table>`.__raw;
    for (const id of openLogs) {
      const el = $('history').querySelector(`[data-log="${id}"]`);
      if (el) eventLog(el, id);
    }
  }

  function renderChart(items, start, end, bucket) {
    const echarts = window.echarts;
    if (!echarts) return;
    const el = $('chart');
    if (!chart) chart = echarts.init(el, 'dark', { locale: getLang() === 'zh' ? 'ZH' : 'EN' });
    const p = point || {};
    const unit = p.unit || '';
    $('trend-note').textContent = bucket ? t('point.bucket', { s: bucket }) : t('point.raw');

    // Break the line where data is missing: bucketed series skip empty buckets.
    const rows = items.map((r) => ({ ...r, t: toDate(r.ts)?.getTime() })).filter((r) => r.t !== undefined);
    const gap = bucket ? bucket * 1000 * 2.5 : gapThreshold(rows);
    const withGaps = [];
    rows.forEach((r, i) => {
      if (i && r.t - rows[i - 1].t > gap) withGaps.push({ t: rows[i - 1].t + 1, gap: true });
      withGaps.push(r);
    });

    const limits = ['hihi', 'hi', 'lo', 'lolo'].filter((k) => num(p[k]) !== null);
    const markLine = {
      silent: true,
      symbol: 'none',
      data: limits.map((k) => ({
        yAxis: num(p[k]),
        lineStyle: { color: LIMIT_STYLE[k].color, type: LIMIT_STYLE[k].type, width: 1.5 },
        label: { formatter: `${LIMIT_STYLE[k].label} ${fmtNum(p[k])}`, color: LIMIT_STYLE[k].color, position: 'end' },
      })),
    };
    const markArea = {
      silent: true,
      itemStyle: { color: 'rgba(255, 77, 79, 0.10)' },
      data: alarms
        .filter((a) => a.tag && a.activated_at)
        .map((a) => [
          { xAxis: Math.max(toDate(a.activated_at).getTime(), start.getTime()) },
          { xAxis: Math.min(a.cleared_at ? toDate(a.cleared_at).getTime() : end.getTime(), end.getTime()) },
        ])
        .filter(([a, b]) => b.xAxis > a.xAxis),
    };

    // Keep the limit lines in view: the axis spans the data and the limits.
    // Bad-quality readings (often out of range) do not stretch the axis; they
    // are drawn apart as grey points.
    const isBad = (r) => !bucket && r.quality === 'bad';
    const vals = [];
    for (const r of rows) {
      if (isBad(r)) continue;
      for (const v of bucket ? [r.min, r.max, r.avg] : [r.value]) if (num(v) !== null) vals.push(Number(v));
    }
    for (const k of limits) vals.push(num(p[k]));
    const [yMin, yMax] = niceBounds(vals);

    const pt = (r, v) => [r.t, r.gap ? null : num(v)];
    let series;
    if (bucket) {
      series = [
        { name: 'min', type: 'line', data: withGaps.map((r) => pt(r, r.min)), stack: 'band', stackStrategy: 'all', symbol: 'none', lineStyle: { opacity: 0 }, tooltip: { show: false }, silent: true },
        { name: t('point.series.band'), type: 'line', data: withGaps.map((r) => [r.t, r.gap ? null : num(r.max) - num(r.min)]), stack: 'band', stackStrategy: 'all', symbol: 'none', lineStyle: { opacity: 0 }, areaStyle: { color: 'rgba(61, 169, 252, 0.25)' }, itemStyle: { color: 'rgba(61, 169, 252, 0.45)' }, silent: true },
        { name: t('point.series.avg'), type: 'line', data: withGaps.map((r) => pt(r, r.avg)), symbol: 'none', lineStyle: { width: 2, color: '#3da9fc' }, itemStyle: { color: '#3da9fc' }, markLine, markArea },
      ];
    } else {
      const clamp = (v) => Math.min(Math.max(v, yMin), yMax);
      const bad = rows.filter(isBad).map((r) => [r.t, clamp(num(r.value) ?? yMin)]);
      series = [
        { name: t('point.series.value'), type: 'line', data: withGaps.map((r) => (isBad(r) ? [r.t, null] : pt(r, r.value))), symbol: rows.length < 60 ? 'circle' : 'none', symbolSize: 5, lineStyle: { width: 2, color: '#3da9fc' }, itemStyle: { color: '#3da9fc' }, markLine, markArea },
      ];
      if (bad.length) series.push({ name: t('point.quality.bad'), type: 'scatter', data: bad, symbolSize: 7, itemStyle: { color: '#8a97ad' } });
    }
    const byTime = new Map(rows.map((r) => [r.t, r]));
    const option = {
      backgroundColor: 'transparent',
      animation: false,
      textStyle: { fontSize: 14 },
      grid: { left: 70, right: 110, top: 36, bottom: 70 },
      legend: { top: 4, data: bucket ? [t('point.series.avg'), t('point.series.band')] : series.map((x) => x.name) },
      tooltip: {
        trigger: 'axis',
        formatter(params) {
          const first = Array.isArray(params) ? params[0] : params;
          const r = first && byTime.get(first.value[0]);
          if (!r) return '';
          const u = unit ? ' ' + unit : '';
          if (bucket) {
            return `${fmtTime(r.t)}<br>${t('point.series.avg')}: <b>${fmtNum(r.avg)}${u}</b><br>${t('point.min')}: ${fmtNum(r.min)}${u} · ${t('point.max')}: ${fmtNum(r.max)}${u}`;
          }
          return `${fmtTime(r.t)}<br><b>${fmtNum(r.value)}${u}</b>${r.quality === 'bad' ? ' (' + t('point.quality.bad') + ')' : ''}`;
        },
      },
      xAxis: { type: 'time', min: start.getTime(), max: end.getTime(), axisLabel: { hideOverlap: true } },
      yAxis: { type: 'value', name: unit, min: yMin, max: yMax, splitLine: { lineStyle: { color: '#26324a' } } },
      dataZoom: [{ type: 'inside' }, { type: 'slider', height: 22, bottom: 12 }],
      series,
      graphic: rows.length ? [] : [{ type: 'text', left: 'center', top: 'middle', style: { text: t('point.no_data'), fill: '#8a97ad', fontSize: 18 } }],
    };
    // Replace the whole option (series differ between raw and bucketed), but
    // keep the user's zoom across automatic refreshes of the same range.
    if (!rangeChanged) {
      const dz = (chart.getOption().dataZoom || [])[0];
      if (dz && (dz.start !== 0 || dz.end !== 100)) option.dataZoom.forEach((z) => Object.assign(z, { start: dz.start, end: dz.end }));
    }
    chart.setOption(option, { notMerge: true });
    rangeChanged = false;
  }

  refresh();

  return () => {
    disposed = true;
    clearTimeout(refreshTimer);
    if (ctrl) ctrl.abort();
    window.removeEventListener('resize', onResize);
    if (chart) chart.dispose();
  };
}

/** Axis bounds on a 1/2/5 grid that include every value (data and limits) with a margin. */
function niceBounds(vals) {
  if (!vals.length) return [0, 1];
  let lo = Math.min(...vals);
  let hi = Math.max(...vals);
  if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const round = (v) => Number(v.toPrecision(12));
  let a = round(Math.floor(lo / step) * step);
  let b = round(Math.ceil(hi / step) * step);
  if (lo - a < step * 0.25 && !(lo >= 0 && a - step < 0)) a = round(a - step);   // no negative axis for a non-negative signal
  if (b - hi < step * 0.25 && !(hi <= 0 && b + step > 0)) b = round(b + step);
  return [a, b];
}

/** For raw readings: a gap is ten typical intervals, and at least a minute. */
function gapThreshold(rows) {
  if (rows.length < 3) return Infinity;
  const d = [];
  for (let i = 1; i < rows.length; i++) d.push(rows[i].t - rows[i - 1].t);
  d.sort((a, b) => a - b);
  return Math.max(d[Math.floor(d.length / 2)] * 10, 60e3);
}
