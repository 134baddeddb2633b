// Alarm performance report (ISA-18.2 §16 / EEMUA 191): figures from
// GET /api/v1/reports/alarm-performance, charts drawn with the vendored ECharts:
// alarm rate over time and flood peaks (one report per time bucket), the top 10
// and the priority mix against the 80/15/5 target; CSV download.

import { endpoints, download, limiter } from './api.js';
import { t, tCode, getLang } from './i18n.js';
import {
  html, fmtTime, fmtNum, href, loadScript, reportError, toast, toLocalInput, fromLocalInput,
  isoLocal, fmtDuration,
} from './ui.js';
import { prioBadge } from './alarms.js';
import { loadEnterprises, enterpriseName } from './names.js';

const ECHARTS_SRC = '/static/vendor/echarts.min.js';
const PRESETS = { '8h': 8 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
// Bucket widths for the time charts (multiples of the 10-minute flood window,
// so each flood window falls in one bucket); the smallest giving ≤ 48 buckets.
const BUCKETS_MIN = [10, 30, 60, 120, 180, 360, 720, 1440, 2880];
const MAX_BUCKETS = 48;
const FLOOD_THRESHOLD = 10;
const COLORS = { high: '#ff4d4f', medium: '#ff9c2a', low: '#f5d000', target: '#5b6b88', bar: '#3da9fc' };
const gate = limiter(4);

function pct(v) { return v === null || v === undefined ? '—' : `${fmtNum(Number((v * 100).toFixed(1)))}%`; }

export function mountReport(root, query) {
  const state = {
    range: PRESETS[query.range] || query.range === 'custom' ? query.range : '24h',
    enterprise: query.enterprise || '',
    start: null,
    end: null,
  };
  if (state.range === 'custom') {
    state.start = query.start ? new Date(query.start) : null;
    state.end = query.end ? new Date(query.end) : null;
    if (!state.start || !state.end || Number.isNaN(state.start.getTime()) || Number.isNaN(state.end.getTime())) state.range = '24h';
  }
  let charts = [];
  let disposed = false;
  let runId = 0;

  root.innerHTML = html`
    <section class="report page">
      <div class="toolbar">
        <h1>${t('rep.title')}</h1>
        <div class="seg" id="presets">
          ${Object.keys(PRESETS).map((k) => html`<button type="button" class="btn" data-range="${k}">${t('rep.range.' + k)}</button>`)}
          <button type="button" class="btn" data-range="custom">${t('rep.range.custom')}</button>
        </div>
        <span id="custom" class="custom-range" hidden>
          <input type="datetime-local" id="start" aria-label="${t('rep.start')}"> –
          <input type="datetime-local" id="end" aria-label="${t('rep.end')}">
          <button class="btn" type="button" id="apply">${t('rep.apply')}</button>
        </span>
        <label>${t('filter.enterprise')}<select id="enterprise"><option value="">${t('filter.all')}</option></select></label>
        <span class="spacer"></span>
        <button class="btn" type="button" id="reload">${t('rep.reload')}</button>
        <button class="btn btn-primary" type="button" id="csv">${t('rep.csv')}</button>
      </div>
      <div class="rep-range muted" id="range-text"></div>
      <div class="kpis" id="kpis"></div>
      <div class="rep-grid">
        <div class="panel"><div class="panel-head"><h2>${t('rep.chart.rate')}</h2><span class="muted" id="rate-note"></span></div><div class="chart chart-m" id="c-rate"></div></div>
        <div class="panel"><div class="panel-head"><h2>${t('rep.chart.flood')}</h2><span class="muted" id="flood-note"></span></div><div class="chart chart-m" id="c-flood"></div></div>
        <div class="panel"><div class="panel-head"><h2>${t('rep.chart.top10')}</h2><span class="muted" id="top-note"></span></div><div class="chart chart-m" id="c-top"></div></div>
        <div class="panel"><div class="panel-head"><h2>${t('rep.chart.mix')}</h2><span class="muted">${t('rep.mix_target')}</span></div><div class="chart chart-m" id="c-mix"></div></div>
      </div>
      <div class="rep-grid">
        <div class="panel"><div class="panel-head"><h2>${t('rep.chattering')}</h2><span class="muted" id="chat-note"></span></div><div id="chattering"></div></div>
        <div class="panel"><div class="panel-head"><h2>${t('rep.stale')}</h2><span class="muted" id="stale-note"></span></div><div id="stale"></div></div>
      </div>
    </section>`.__raw;
  const $ = (id) => root.querySelector('#' + id);
  document.title = `${t('rep.title')} · hazmon`;

  function window_() {
    if (state.range === 'custom') return { start: state.start, end: state.end };
    const end = new Date();
    return { start: new Date(end.getTime() - PRESETS[state.range]), end };
  }

  function syncControls() {
    for (const b of $('presets').children) b.classList.toggle('on', b.dataset.range === state.range);
    $('custom').hidden = state.range !== 'custom';
    const w = window_();
    if (w.start) $('start').value = toLocalInput(w.start);
    if (w.end) $('end').value = toLocalInput(w.end);
    const q = { range: state.range, enterprise: state.enterprise };
    if (state.range === 'custom') Object.assign(q, { start: isoLocal(state.start), end: isoLocal(state.end) });
    const h = href(['report'], q);
    if (location.hash !== h) history.replaceState(null, '', h);
  }

  $('presets').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-range]');
    if (!b) return;
    if (b.dataset.range === 'custom') {
      const w = window_();
      state.start = w.start; state.end = w.end;
      state.range = 'custom';
      syncControls();
      return;
    }
    state.range = b.dataset.range;
    syncControls();
    load();
  });
  $('apply').addEventListener('click', () => {
    const w = window_();
    const s = w.start && $('start').value === toLocalInput(w.start) ? w.start : fromLocalInput($('start').value);
    const e = w.end && $('end').value === toLocalInput(w.end) ? w.end : fromLocalInput($('end').value);
    if (!s || !e || e <= s) { toast(t('rep.bad_range'), 'error'); return; }
    state.start = s; state.end = e;
    syncControls();
    load();
  });
  $('enterprise').addEventListener('change', (e) => { state.enterprise = e.target.value; syncControls(); load(); });
  $('reload').addEventListener('click', () => load());
  $('csv').addEventListener('click', async () => {
    const w = window_();
    try {
      const name = await download('/api/v1/reports/alarm-performance', {
        start: isoLocal(w.start), end: isoLocal(w.end), enterprise: state.enterprise || undefined, format: 'csv',
      }, 'alarm-performance.csv');
      toast(t('rep.downloaded', { name }), 'ok');
    } catch (err) { reportError(err); }
  });

  loadEnterprises().then((list) => {
    if (disposed) return;
    const sel = $('enterprise');
    sel.innerHTML = html`<option value="">${t('filter.all')}</option>${list.map((e) => html`<option value="${e.code}">${e.name && e.name !== e.code ? `${e.name} (${e.code})` : e.code}</option>`)}`.__raw;
    sel.value = state.enterprise;
  }).catch(reportError);

  function buckets(start, end) {
    const span = end - start;
    const widthMin = BUCKETS_MIN.find((m) => span / (m * 60e3) <= MAX_BUCKETS) || BUCKETS_MIN[BUCKETS_MIN.length - 1];
    const w = widthMin * 60e3;
    const out = [];
    // Aligned to the epoch like the flood windows (in UTC; a day bucket starts 08:00 in China).
    for (let b = Math.floor(start.getTime() / w) * w; b < end.getTime(); b += w) {
      out.push({ start: new Date(Math.max(b, start.getTime())), end: new Date(Math.min(b + w, end.getTime())), at: b });
    }
    return { widthMin, list: out };
  }

  async function load() {
    const id = ++runId;
    const w = window_();
    const ent = state.enterprise || undefined;
    $('range-text').textContent = `${fmtTime(w.start)} – ${fmtTime(w.end)}${ent ? ` · ${enterpriseName(ent) || ent}` : ''}`;
    $('kpis').innerHTML = html`<div class="muted pad">${t('point.loading')}</div>`.__raw;
    let rep;
    try {
      [rep] = await Promise.all([
        endpoints.alarmPerformance({ start: isoLocal(w.start), end: isoLocal(w.end), enterprise: ent }),
        loadScript(ECHARTS_SRC),
      ]);
    } catch (err) {
      if (id !== runId || disposed) return;
      reportError(err);
      $('kpis').innerHTML = html`<div class="err pad">${err.message || String(err)}</div>`.__raw;
      return;
    }
    if (id !== runId || disposed) return;
    renderKpis(rep);
    renderTables(rep);
    drawTop(rep);
    drawMix(rep);
    // The time charts: one report per bucket, a few at a time.
    const b = buckets(w.start, w.end);
    $('rate-note').textContent = t('rep.bucket', { d: fmtDuration(b.widthMin * 60) });
    drawTime(b, null);
    const results = await Promise.all(b.list.map((k) => gate(() => (id === runId
      ? endpoints.alarmPerformance({ start: isoLocal(k.start), end: isoLocal(k.end), enterprise: ent }).catch(() => null)
      : Promise.resolve(null)))));
    if (id !== runId || disposed) return;
    drawTime(b, results);
  }

  function renderKpis(r) {
    const f = r.flood || {};
    const kpi = (n, l, cls = '', title = '') => html`<div class="kpi ${cls}" title="${title}"><span class="n">${n}</span><span class="l">${l}</span></div>`;
    $('kpis').innerHTML = html`
      ${kpi(fmtNum(r.activations), t('rep.kpi.activations'))}
      ${kpi(fmtNum(Number(r.per_10min).toFixed(2)), t('rep.kpi.per10'), r.per_10min > 1 ? 'warn' : 'ok', t('rep.kpi.per10.title'))}
      ${kpi(fmtNum(Number(r.per_day).toFixed(1)), t('rep.kpi.perday'))}
      ${kpi(`${f.flood_windows ?? 0} / ${f.windows ?? 0}`, t('rep.kpi.flood'), f.flood_windows ? 'alert' : 'ok', pct(f.flood_share))}
      ${kpi(fmtNum(f.peak_10min ?? 0), t('rep.kpi.peak'), (f.peak_10min ?? 0) > FLOOD_THRESHOLD ? 'alert' : '')}
      ${kpi(fmtNum(r.chattering_count), t('rep.kpi.chattering'), r.chattering_count ? 'warn' : 'ok')}
      ${kpi(fmtNum(r.stale_count), t('rep.kpi.stale'), r.stale_count ? 'warn' : 'ok')}
      ${kpi(pct(r.top10_share), t('rep.kpi.top10'))}
      ${kpi(fmtNum(r.not_annunciated), t('rep.kpi.masked'))}
      ${kpi(`${r.shelved ? r.shelved.events : 0} / ${r.shelved ? r.shelved.current : 0}`, t('rep.kpi.shelved'))}
      ${kpi(`${r.suppressed ? r.suppressed.events : 0} / ${r.suppressed ? r.suppressed.current : 0}`, t('rep.kpi.suppressed'))}`.__raw;
    $('flood-note').textContent = t('rep.flood_note', { n: f.flood_windows ?? 0, of: f.windows ?? 0, share: pct(f.flood_share) });
    $('top-note').textContent = t('rep.top_note', { share: pct(r.top10_share) });
  }

  const keyText = (a) => `${enterpriseName(a.enterprise) || a.enterprise} · ${a.tag || t('board.gateway', { gw: a.gateway || '' })} ${a.condition}`;
  const keyCell = (a) => html`<td>${enterpriseName(a.enterprise) || a.enterprise}</td>
    <td>${a.tag ? html`<a class="tag" href="${href(['point', a.enterprise, a.tag])}">${a.tag}</a>` : t('board.gateway', { gw: a.gateway || '' })}</td>
    <td><span class="cond">${a.condition}</span></td>`;

  function renderTables(r) {
    $('chat-note').textContent = t('hs.count', { n: r.chattering_count });
    $('stale-note').textContent = t('hs.count', { n: r.stale_count });
    $('chattering').innerHTML = (r.chattering.length ? html`
      <table class="grid"><thead><tr><th>${t('col.enterprise')}</th><th>${t('col.tag')}</th><th>${t('col.condition')}</th>
        <th class="num">${t('rep.max_per_min')}</th><th class="num">${t('rep.activations')}</th></tr></thead>
        <tbody>${r.chattering.map((c) => html`<tr>${keyCell(c)}<td class="num">${c.max_per_minute}</td><td class="num">${c.activations}</td></tr>`)}</tbody></table>`
      : html`<div class="muted pad">${t('rep.none')}</div>`).__raw;
    $('stale').innerHTML = (r.stale.length ? html`
      <table class="grid"><thead><tr><th>${t('col.enterprise')}</th><th>${t('col.tag')}</th><th>${t('col.condition')}</th>
        <th>${t('col.priority')}</th><th>${t('col.state')}</th><th class="c-time">${t('rep.active_since')}</th><th class="num">${t('rep.active_for')}</th></tr></thead>
        <tbody>${r.stale.map((s) => html`<tr>${keyCell(s)}<td>${prioBadge(s.priority)}</td><td>${tCode('state', s.state)}</td>
          <td class="c-time">${fmtTime(s.active_since)}</td><td class="num">${fmtDuration(s.active_s)}</td></tr>`)}</tbody></table>`
      : html`<div class="muted pad">${t('rep.none')}</div>`).__raw;
  }

  function chart(id) {
    const el = $(id);
    let c = window.echarts.getInstanceByDom(el);
    if (!c) { c = window.echarts.init(el, 'dark', { locale: getLang() === 'zh' ? 'ZH' : 'EN' }); charts.push(c); }
    return c;
  }
  const base = { backgroundColor: 'transparent', animation: false, textStyle: { fontSize: 14 } };

  function drawTime(b, results) {
    const labels = b.list.map((k) => k.start.getTime());
    const fmtAxis = (v) => {
      const d = new Date(Number(v));   // category values arrive as strings
      const hm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
      return b.widthMin >= 1440 || (b.list.length && b.list[b.list.length - 1].end - b.list[0].start > 86400e3)
        ? `${d.getMonth() + 1}-${d.getDate()} ${hm}` : hm;
    };
    const acts = results ? results.map((r) => (r ? r.activations : null)) : labels.map(() => null);
    const peaks = results ? results.map((r) => (r && r.flood ? r.flood.peak_10min : null)) : labels.map(() => null);
    const loading = !results;
    const target = b.widthMin / 10;    // 1 alarm per 10 min, per bucket
    chart('c-rate').setOption({
      ...base,
      grid: { left: 60, right: 30, top: 40, bottom: 50 },
      legend: { top: 4, data: [t('rep.series.activations'), t('rep.series.target')] },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
      xAxis: { type: 'category', data: labels, axisLabel: { formatter: fmtAxis, hideOverlap: true } },
      yAxis: { type: 'value', minInterval: 1, name: t('rep.per_bucket'), splitLine: { lineStyle: { color: '#26324a' } } },
      series: [
        { name: t('rep.series.activations'), type: 'bar', data: acts, itemStyle: { color: COLORS.bar }, barMaxWidth: 28 },
        { name: t('rep.series.target'), type: 'line', data: labels.map(() => target), symbol: 'none', lineStyle: { type: 'dashed', color: '#3ccf8e' }, itemStyle: { color: '#3ccf8e' } },
      ],
      graphic: loading ? [{ type: 'text', left: 'center', top: 'middle', style: { text: t('point.loading'), fill: '#8a97ad', fontSize: 16 } }] : [],
    }, { notMerge: true });
    chart('c-flood').setOption({
      ...base,
      grid: { left: 60, right: 90, top: 40, bottom: 50 },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
      xAxis: { type: 'category', data: labels, axisLabel: { formatter: fmtAxis, hideOverlap: true } },
      yAxis: { type: 'value', minInterval: 1, name: t('rep.peak_axis'), max: (v) => Math.max(v.max, FLOOD_THRESHOLD + 2), splitLine: { lineStyle: { color: '#26324a' } } },
      series: [{
        name: t('rep.series.peak'), type: 'bar', barMaxWidth: 28,
        data: peaks.map((v) => ({ value: v, itemStyle: { color: v > FLOOD_THRESHOLD ? COLORS.high : '#5b8def' } })),
        markLine: { silent: true, symbol: 'none', data: [{ yAxis: FLOOD_THRESHOLD, lineStyle: { color: COLORS.high, type: 'dashed' }, label: { formatter: t('rep.flood_line'), color: COLORS.high, position: 'end' } }] },
      }],
      graphic: loading ? [{ type: 'text', left: 'center', top: 'middle', style: { text: t('point.loading'), fill: '#8a97ad', fontSize: 16 } }] : [],
    }, { notMerge: true });
  }

  function drawTop(r) {
    const top = [...(r.top10 || [])].reverse();
    chart('c-top').setOption({
      ...base,
      grid: { left: 20, right: 70, top: 20, bottom: 30, containLabel: true },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, formatter: (ps) => { const p = ps[0]; const a = top[p.dataIndex]; return `${keyText(a)}<br>${a.activations} (${pct(a.share)})`; } },
      xAxis: { type: 'value', minInterval: 1, splitLine: { lineStyle: { color: '#26324a' } } },
      yAxis: { type: 'category', data: top.map((a) => `${a.tag || a.gateway || ''} ${a.condition}`), axisLabel: { fontFamily: 'monospace' } },
      series: [{ type: 'bar', data: top.map((a) => a.activations), itemStyle: { color: '#ff9c2a' }, barMaxWidth: 22,
        label: { show: true, position: 'right', formatter: (p) => pct(top[p.dataIndex].share), color: '#e6edf7' } }],
      graphic: top.length ? [] : [{ type: 'text', left: 'center', top: 'middle', style: { text: t('rep.none'), fill: '#8a97ad', fontSize: 16 } }],
    }, { notMerge: true });
  }

  function drawMix(r) {
    const mix = r.priority_mix || {};
    const prios = ['high', 'medium', 'low'];
    chart('c-mix').setOption({
      ...base,
      grid: { left: 60, right: 30, top: 40, bottom: 40 },
      legend: { top: 4, data: [t('rep.series.actual'), t('rep.series.target_mix')] },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => `${fmtNum(Number(v).toFixed(1))}%` },
      xAxis: { type: 'category', data: prios.map((p) => tCode('prio', p)) },
      yAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' }, splitLine: { lineStyle: { color: '#26324a' } } },
      series: [
        { name: t('rep.series.actual'), type: 'bar', barMaxWidth: 48,
          data: prios.map((p) => ({ value: mix[p] ? +(mix[p].share * 100).toFixed(1) : 0, itemStyle: { color: COLORS[p] } })),
          label: { show: true, position: 'top', formatter: (p) => `${p.value}% (${mix[prios[p.dataIndex]] ? mix[prios[p.dataIndex]].count : 0})`, color: '#e6edf7' } },
        { name: t('rep.series.target_mix'), type: 'bar', barMaxWidth: 48,
          data: prios.map((p) => (mix[p] ? +(mix[p].target * 100).toFixed(1) : { high: 5, medium: 15, low: 80 }[p])),
          itemStyle: { color: COLORS.target }, label: { show: true, position: 'top', formatter: '{c}%', color: '#8a97ad' } },
      ],
    }, { notMerge: true });
  }

  const onResize = () => charts.forEach((c) => c.resize());
  window.addEventListener('resize', onResize);
  syncControls();
  load();

  return () => {
    disposed = true;
    runId++;
    window.removeEventListener('resize', onResize);
    charts.forEach((c) => c.dispose());
    charts = [];
  };
}
