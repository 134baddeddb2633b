"""Message texts: a title, Markdown for the group robots, plain text for e-mail, JSON for webhooks.

Texts are Chinese (duty rooms read Chinese); codes stay as they are so they can be searched.
Times are shown in China Standard Time. A flood is summarised: counts, then the top alarms.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from alerting.notify.model import AlarmInfo, Message

CST = timezone(timedelta(hours=8), "CST")
TOP = 10                # alarms listed in a text message
WEBHOOK_MAX = 1000      # alarms listed in a webhook body

REASON = {"first": "报警通知", "escalation": "报警升级", "update": "报警更新",
          "reminder": "报警提醒", "resolved": "报警已处理", "warning": "预警超时", "test": "通道测试"}
PRIORITY = {"high": "高", "medium": "中", "low": "低"}
CONDITION = {"HIHI": "高高报", "HI": "高报", "LO": "低报", "LOLO": "低低报", "ROC": "变化率",
             "STALE": "数据停滞", "BAD": "坏值", "COMM": "通讯中断", "WARNING": "预警"}
STATE = {"UNACK_ACTIVE": "未确认", "RTN_UNACK": "已恢复未确认", "ACK_ACTIVE": "已确认",
         "CLOSED": "已关闭", "SHELVED": "已搁置", "SUPPRESSED": "已抑制", "OUT_OF_SERVICE": "已停用",
         "UNROUTED": "不再属于此规则"}
COLOR = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
STEP = {"acknowledge": "签收", "feedback": "反馈", "clear": "消警"}


def local(at: datetime) -> str:
    return at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def _scope(msg: Message) -> str:
    values = [str(v) for v in msg.group_labels.values() if v is not None]
    return " / ".join(values) or "全部"


def title(msg: Message) -> str:
    """One line: what happened, where, how many."""
    head = f"【{REASON.get(msg.reason, msg.reason)}】"
    if msg.warning is not None:
        w = msg.warning
        return (f"{head}{w.enterprise} {COLOR.get(w.color, w.color)}预警 #{w.warning_id} "
                f"{STEP.get(w.step, w.step)}超时")
    if msg.reason == "test":
        return f"{head}hazmon 通知通道测试"
    if not msg.firing:
        return f"{head}{_scope(msg)}：报警均已确认或关闭"
    c = msg.counts()
    return f"{head}{_scope(msg)}：{c['unacknowledged']} 条报警未确认（高 {c['high']}）"


def alarm_line(a: AlarmInfo) -> str:
    where = " · ".join(x for x in (a.enterprise, a.hazard_source, a.tag) if x)
    name = f"（{a.point_name}）" if a.point_name else ""
    value = "" if a.value is None else f" 值 {a.value:g}"
    limit = "" if a.limit is None else f" / 限值 {a.limit:g}"
    state = "" if a.state == "UNACK_ACTIVE" else f" [{STATE.get(a.state, a.state)}]"
    return (f"[{PRIORITY.get(a.priority, a.priority)}] {where}{name} "
            f"{CONDITION.get(a.condition, a.condition)}{value}{limit} · {local(a.since)}{state}")


def summary_lines(msg: Message) -> list[str]:
    """The lines before the alarm list."""
    lines = [f"规则：{msg.rule or '-'}" + (f" · 第 {msg.tier + 1} 级通知" if msg.tier else "")]
    if msg.warning is not None:
        w = msg.warning
        lines += [f"企业：{w.enterprise}" + (f" · 重大危险源：{w.hazard_source}" if w.hazard_source else "")
                  + (f"（{w.level} 级）" if w.level else ""),
                  (f"预警：#{w.warning_id} {COLOR.get(w.color, w.color)} · "
                   f"环节：{STEP.get(w.step, w.step)} · 期限：{local(w.due_at)}")]
        return lines
    if msg.reason == "test":
        return ["这是一条测试消息，收到即表示通道配置正确。"]
    c = msg.counts()
    lines.append(f"未确认 {c['unacknowledged']} 条（高 {c['high']} / 中 {c['medium']} / 低 {c['low']}）"
                 f"，新增 {c['new']} 条" + (f"，已处理 {c['resolved']} 条" if c["resolved"] else ""))
    return lines


def _fit(head: list[str], items: list[str], tail_for: Any, max_bytes: int, sep: str) -> str:
    """Join head and as many items as fit in max_bytes (UTF-8), then the tail for the rest."""
    text = sep.join(head)
    for n, item in enumerate(items):
        rest = len(items) - n
        if len((text + sep + item + sep + tail_for(rest)).encode()) > max_bytes:
            return text + sep + tail_for(rest)
        text += sep + item
    return text + sep + tail_for(0)


def markdown(msg: Message, max_bytes: int = 4000, wecom: bool = False) -> str:
    """Markdown for WeCom and DingTalk robots (WeCom colours high priority)."""
    head = [f"### {title(msg)}", *(f"> {line}" for line in summary_lines(msg))]
    shown = list(msg.firing[:TOP])
    items = []
    for a in shown:
        line = alarm_line(a)
        if wecom and a.priority == "high":
            line = line.replace("[高]", '<font color="warning">[高]</font>', 1)
        items.append(f"- {line}")
    items += [f"- ~~{alarm_line(a)}~~" for a in msg.resolved[:TOP]]
    more = len(msg.firing) - len(shown)
    footer = f"\n其余 {more} 条未列出，请在 hazmon 值班台查看。" if more else ""

    def tail(rest: int) -> str:
        skipped = f"…另有 {rest} 条" if rest else ""
        return (skipped + footer + f"\n\n<font color=\"comment\">hazmon · {local(msg.at)}</font>"
                if wecom else skipped + footer + f"\n\nhazmon · {local(msg.at)}")

    return _fit(head, items, tail, max_bytes, "\n")


def plain(msg: Message) -> str:
    """Plain text for e-mail: every line of the summary and up to TOP alarms."""
    lines = [title(msg), "", *summary_lines(msg), ""]
    lines += [alarm_line(a) for a in msg.firing[:TOP]]
    if len(msg.firing) > TOP:
        lines.append(f"……其余 {len(msg.firing) - TOP} 条未列出，请在 hazmon 值班台查看。")
    if msg.resolved:
        lines += ["", "已确认或关闭："] + [alarm_line(a) for a in msg.resolved[:TOP]]
    lines += ["", f"hazmon · {local(msg.at)} · 消息编号 {msg.delivery}"]
    return "\n".join(lines)


def alarm_json(a: AlarmInfo, new: bool) -> dict[str, Any]:
    return {"id": a.id, "enterprise": a.enterprise, "hazard_source": a.hazard_source,
            "hazard_level": a.hazard_level, "tag": a.tag, "point_name": a.point_name,
            "gateway": a.gateway, "condition": a.condition, "priority": a.priority,
            "state": a.state, "value": a.value, "limit": a.limit,
            "activated_at": a.activated_at.isoformat(), "pending_since": a.since.isoformat(),
            "new": new}


def webhook_body(msg: Message) -> dict[str, Any]:
    """The generic webhook's JSON: the whole group (up to WEBHOOK_MAX alarms), counts, texts."""
    w = msg.warning
    status = {"warning": "warning", "test": "test"}.get(msg.reason,
                                                       "firing" if msg.firing else "resolved")
    return {
        "version": "1", "delivery": msg.delivery, "status": status, "reason": msg.reason,
        "sent_at": msg.at.isoformat(), "rule": msg.rule, "group": msg.group_labels,
        "tier": msg.tier, "title": title(msg), "text": plain(msg), "counts": msg.counts(),
        "alarms": [alarm_json(a, a.id in msg.new_ids) for a in msg.firing[:WEBHOOK_MAX]],
        "resolved": [alarm_json(a, False) for a in msg.resolved[:WEBHOOK_MAX]],
        "truncated": len(msg.firing) > WEBHOOK_MAX or len(msg.resolved) > WEBHOOK_MAX,
        "warning": None if w is None else {
            "warning_id": w.warning_id, "enterprise": w.enterprise,
            "hazard_source": w.hazard_source, "level": w.level, "color": w.color,
            "priority": w.priority, "step": w.step, "due_at": w.due_at.isoformat()},
    }
