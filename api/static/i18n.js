// All user-visible text of the duty console, Chinese (default) and English.
// Alarm condition codes (HIHI, HI, LO, LOLO, ROC, STALE, BAD, COMM) are shown
// as codes in both languages, as on the plant's own DCS screens.

const LANG_KEY = 'hazmon.lang';

const zh = {
  'app.title': '重大危险源监测预警',
  'app.short': 'hazmon',
  'nav.alarms': '报警看板',
  'nav.enterprises': '企业与点位',
  'hdr.signout': '退出登录',
  'hdr.fullscreen': '全屏',
  'hdr.lang': 'EN',
  'hdr.lang.title': 'Switch to English',

  'signin.title': '值班台登录',
  'signin.prompt': '请粘贴访问令牌（Bearer token）',
  'signin.token': '访问令牌',
  'signin.submit': '登录',
  'signin.checking': '正在验证…',
  'signin.help': '令牌由系统管理员发放；服务首次启动时会打印一个管理员令牌。令牌只保存在本浏览器中。',
  'signin.expired': '登录已失效或令牌无效，请重新登录。',
  'signin.invalid': '令牌无效（401），请检查后重试。',
  'signin.empty': '请输入令牌。',
  'signin.signedout': '已退出登录。',

  'state.UNACK_ACTIVE': '未确认-报警中',
  'state.ACK_ACTIVE': '已确认-报警中',
  'state.RTN_UNACK': '已恢复-未确认',
  'state.CLOSED': '已关闭',
  'state.SHELVED': '已搁置',
  'state.SUPPRESSED': '已抑制',
  'state.OUT_OF_SERVICE': '停用',
  'prio.high': '高',
  'prio.medium': '中',
  'prio.low': '低',

  'filter.enterprise': '企业',
  'filter.condition': '报警类型',
  'filter.priority': '优先级',
  'filter.state': '状态',
  'filter.all': '全部',
  'filter.state.active': '报警中',
  'filter.state.open': '未关闭',
  'filter.state.all': '全部（含已关闭）',
  'filter.reset': '重置',

  'col.time': '报警时间',
  'col.enterprise': '企业',
  'col.hazard': '重大危险源',
  'col.tag': '位号',
  'col.condition': '报警类型',
  'col.priority': '优先级',
  'col.state': '状态',
  'col.value': '报警值',
  'col.limit': '限值',
  'col.action': '操作',
  'col.cleared': '恢复时间',
  'col.acked': '确认时间',
  'col.acked_by': '确认人',

  'board.total': '合计',
  'board.high_unack': '高优先级未确认',
  'board.empty': '当前没有符合条件的报警',
  'board.loading': '正在加载报警…',
  'board.updated': '更新于 {time}',
  'board.offline': '连接中断，数据可能已过时（自 {time}）',
  'board.sound': '新高优先级报警声音',
  'board.sound.on': '声音：开',
  'board.sound.off': '声音：关',
  'board.truncated': '仅显示前 {n} 条，请用筛选条件缩小范围',
  'board.select_all': '全选可确认的报警',
  'board.gateway': '网关 {gw}',
  'board.feed.poll': '轮询',
  'board.feed.stream': '实时推送',
  'board.stream_lost': '实时推送连接中断，正在重连',
  'board.activations': '本报警已触发 {n} 次（未关闭期间重复触发）',

  'ack.one': '确认',
  'ack.bulk': '确认所选（{n}）',
  'ack.title': '确认报警',
  'ack.title.n': '确认 {n} 条报警',
  'ack.comment': '备注（可选）',
  'ack.comment.ph': '例如：已电话联系企业值班人员',
  'ack.confirm': '确认',
  'ack.cancel': '取消',
  'ack.done': '已确认 {n} 条报警',
  'ack.failed': '{n} 条报警确认失败：{detail}',

  'err.network': '无法连接服务器',
  'err.forbidden': '无权限：{detail}',
  'err.http': '请求失败（{status}）：{detail}',
  'err.notfound': '未找到：{detail}',

  'point.back': '返回看板',
  'point.name': '名称',
  'point.kind': '类型',
  'point.unit': '单位',
  'point.hazard': '重大危险源',
  'point.range': '量程',
  'point.limits': '报警限值',
  'point.deadband': '回差',
  'point.on_delay': '报警延时',
  'point.off_delay': '恢复延时',
  'point.roc': '变化率',
  'point.stale': '超时',
  'point.latest': '最新值',
  'point.quality.good': '正常',
  'point.quality.bad': '坏值',
  'point.no_latest': '尚无数据',
  'point.trend': '趋势',
  'point.range.15m': '15 分钟',
  'point.range.1h': '1 小时',
  'point.range.6h': '6 小时',
  'point.range.24h': '24 小时',
  'point.bucket': '按 {s} 秒聚合：均值与最小/最大范围',
  'point.raw': '原始数据',
  'point.no_data': '所选时间段内没有数据',
  'point.history': '报警记录',
  'point.no_alarms': '该点位没有报警记录',
  'point.series.value': '测量值',
  'point.series.avg': '均值',
  'point.series.band': '最小–最大',
  'point.min': '最小',
  'point.max': '最大',
  'point.seconds': '{n} 秒',
  'point.per_min': '{n}/分钟',
  'point.not_found': '点位不存在',
  'point.out_of_service': '停用',
  'point.loading': '正在加载…',

  'ent.title': '企业与点位',
  'ent.search': '搜索企业编码或名称',
  'ent.count': '共 {n} 家企业',
  'ent.empty': '没有企业',
  'ent.location': '位置',
  'ent.open_alarms': '未关闭报警',
  'ent.hazards': '重大危险源',
  'ent.points': '监测点位',
  'ent.no_hazards': '没有重大危险源',
  'ent.no_points': '没有点位',
  'ent.loading': '正在加载…',
  'ent.code': '编码',
  'ent.name': '名称',
  'ent.unit_type': '单元类型',
  'ent.level': '级别',
  'ent.chemicals': '危险化学品',
  'ent.not_major': '未构成',
  'ent.expand_all': '全部展开',
  'ent.collapse_all': '全部收起',
  'ent.open_point_alarm': '有未关闭报警',
  'unit_type.storage': '储存单元',
  'unit_type.production': '生产单元',
  'level.1': '一级',
  'level.2': '二级',
  'level.3': '三级',
  'level.4': '四级',

  'kind.temperature': '温度',
  'kind.pressure': '压力',
  'kind.level': '液位',
  'kind.flow': '流量',
  'kind.gas': '可燃气体',
  'kind.toxic_gas': '有毒气体',
  'kind.oxygen': '氧气',
  'kind.composition': '组分',
  'kind.valve': '阀位',
  'kind.other': '其他',

  'route.notfound': '页面不存在',
};

const en = {
  'app.title': 'Major Hazard Source Monitoring',
  'app.short': 'hazmon',
  'nav.alarms': 'Alarm board',
  'nav.enterprises': 'Enterprises',
  'hdr.signout': 'Sign out',
  'hdr.fullscreen': 'Full screen',
  'hdr.lang': '中文',
  'hdr.lang.title': '切换到中文',

  'signin.title': 'Duty console sign-in',
  'signin.prompt': 'Paste your access token (bearer token)',
  'signin.token': 'Access token',
  'signin.submit': 'Sign in',
  'signin.checking': 'Checking…',
  'signin.help': 'Tokens are issued by an administrator; the server prints an admin token on its first start. The token is kept in this browser only.',
  'signin.expired': 'Your session has expired or the token is not valid. Please sign in again.',
  'signin.invalid': 'The token was not accepted (401). Check it and try again.',
  'signin.empty': 'Please enter a token.',
  'signin.signedout': 'Signed out.',

  'state.UNACK_ACTIVE': 'Unacknowledged, active',
  'state.ACK_ACTIVE': 'Acknowledged, active',
  'state.RTN_UNACK': 'Returned, unacknowledged',
  'state.CLOSED': 'Closed',
  'state.SHELVED': 'Shelved',
  'state.SUPPRESSED': 'Suppressed',
  'state.OUT_OF_SERVICE': 'Out of service',
  'prio.high': 'High',
  'prio.medium': 'Medium',
  'prio.low': 'Low',

  'filter.enterprise': 'Enterprise',
  'filter.condition': 'Condition',
  'filter.priority': 'Priority',
  'filter.state': 'State',
  'filter.all': 'All',
  'filter.state.active': 'Active',
  'filter.state.open': 'Open',
  'filter.state.all': 'All (incl. closed)',
  'filter.reset': 'Reset',

  'col.time': 'Activated',
  'col.enterprise': 'Enterprise',
  'col.hazard': 'Hazard source',
  'col.tag': 'Tag',
  'col.condition': 'Condition',
  'col.priority': 'Priority',
  'col.state': 'State',
  'col.value': 'Value',
  'col.limit': 'Limit',
  'col.action': 'Action',
  'col.cleared': 'Cleared',
  'col.acked': 'Acknowledged',
  'col.acked_by': 'By',

  'board.total': 'Total',
  'board.high_unack': 'High priority unacked',
  'board.empty': 'No alarms match the filters',
  'board.loading': 'Loading alarms…',
  'board.updated': 'Updated {time}',
  'board.offline': 'Connection lost, data may be stale (since {time})',
  'board.sound': 'Sound on new high-priority alarm',
  'board.sound.on': 'Sound: on',
  'board.sound.off': 'Sound: off',
  'board.truncated': 'Showing the first {n} only; narrow the filters',
  'board.select_all': 'Select all acknowledgeable alarms',
  'board.gateway': 'gateway {gw}',
  'board.feed.poll': 'polling',
  'board.feed.stream': 'live stream',
  'board.stream_lost': 'Live stream lost, reconnecting',
  'board.activations': 'activated {n} times while open',

  'ack.one': 'Acknowledge',
  'ack.bulk': 'Acknowledge selected ({n})',
  'ack.title': 'Acknowledge alarm',
  'ack.title.n': 'Acknowledge {n} alarms',
  'ack.comment': 'Comment (optional)',
  'ack.comment.ph': 'e.g. phoned the enterprise duty officer',
  'ack.confirm': 'Acknowledge',
  'ack.cancel': 'Cancel',
  'ack.done': 'Acknowledged {n} alarm(s)',
  'ack.failed': '{n} alarm(s) could not be acknowledged: {detail}',

  'err.network': 'Cannot reach the server',
  'err.forbidden': 'Not permitted: {detail}',
  'err.http': 'Request failed ({status}): {detail}',
  'err.notfound': 'Not found: {detail}',

  'point.back': 'Back to board',
  'point.name': 'Name',
  'point.kind': 'Kind',
  'point.unit': 'Unit',
  'point.hazard': 'Hazard source',
  'point.range': 'Range',
  'point.limits': 'Limits',
  'point.deadband': 'Deadband',
  'point.on_delay': 'On delay',
  'point.off_delay': 'Off delay',
  'point.roc': 'Rate of change',
  'point.stale': 'Stale after',
  'point.latest': 'Latest',
  'point.quality.good': 'good',
  'point.quality.bad': 'bad',
  'point.no_latest': 'No reading yet',
  'point.trend': 'Trend',
  'point.range.15m': '15 min',
  'point.range.1h': '1 h',
  'point.range.6h': '6 h',
  'point.range.24h': '24 h',
  'point.bucket': '{s} s buckets: average with min/max band',
  'point.raw': 'raw readings',
  'point.no_data': 'No readings in this period',
  'point.history': 'Alarm history',
  'point.no_alarms': 'No alarms for this point',
  'point.series.value': 'Value',
  'point.series.avg': 'Average',
  'point.series.band': 'Min–max',
  'point.min': 'min',
  'point.max': 'max',
  'point.seconds': '{n} s',
  'point.per_min': '{n}/min',
  'point.not_found': 'Point not found',
  'point.out_of_service': 'out of service',
  'point.loading': 'Loading…',

  'ent.title': 'Enterprises and points',
  'ent.search': 'Search by code or name',
  'ent.count': '{n} enterprise(s)',
  'ent.empty': 'No enterprises',
  'ent.location': 'Location',
  'ent.open_alarms': 'Open alarms',
  'ent.hazards': 'Major hazard sources',
  'ent.points': 'Monitoring points',
  'ent.no_hazards': 'No major hazard sources',
  'ent.no_points': 'No points',
  'ent.loading': 'Loading…',
  'ent.code': 'Code',
  'ent.name': 'Name',
  'ent.unit_type': 'Unit type',
  'ent.level': 'Level',
  'ent.chemicals': 'Hazardous chemicals',
  'ent.not_major': 'not major',
  'ent.expand_all': 'Expand all',
  'ent.collapse_all': 'Collapse all',
  'ent.open_point_alarm': 'has open alarms',
  'unit_type.storage': 'Storage unit',
  'unit_type.production': 'Production unit',
  'level.1': 'Level 1',
  'level.2': 'Level 2',
  'level.3': 'Level 3',
  'level.4': 'Level 4',

  'kind.temperature': 'Temperature',
  'kind.pressure': 'Pressure',
  'kind.level': 'Level',
  'kind.flow': 'Flow',
  'kind.gas': 'Combustible gas',
  'kind.toxic_gas': 'Toxic gas',
  'kind.oxygen': 'Oxygen',
  'kind.composition': 'Composition',
  'kind.valve': 'Valve position',
  'kind.other': 'Other',

  'route.notfound': 'Page not found',
};

const DICTS = { zh, en };

let lang = (() => {
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved && DICTS[saved]) return saved;
  } catch { /* storage may be disabled */ }
  return 'zh';
})();

const listeners = new Set();

export function getLang() { return lang; }

export function setLang(next) {
  if (!DICTS[next] || next === lang) return;
  lang = next;
  try { localStorage.setItem(LANG_KEY, next); } catch { /* ignore */ }
  document.documentElement.lang = next === 'zh' ? 'zh-CN' : 'en';
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Translate `key`, filling `{name}` placeholders from `params`.
 *  An unknown key falls back to English, then to the key itself. */
export function t(key, params) {
  let s = DICTS[lang][key] ?? en[key] ?? key;
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return s;
}

/** Translate `prefix.code` if known, else show the code itself (unknown
 *  states, priorities or kinds from a newer server must still be visible). */
export function tCode(prefix, code) {
  if (code === null || code === undefined || code === '') return '';
  const key = `${prefix}.${code}`;
  return DICTS[lang][key] ?? en[key] ?? String(code);
}

document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
