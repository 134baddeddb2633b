"""Incidents, pure: correlation rules, the reporting clock and distances (``now`` passed in).

A correlation rule opens an incident (or adds to the open one of the hazard source) when at
least ``min_points`` different points of one hazard source activate one of ``conditions``
with all their activations within ``window_s`` of each other (first to last: exactly
``window_s`` apart matches, a millisecond more does not). ``point_kinds`` and ``levels``
narrow the points and hazard sources (null = any). Defaults:

    gas_multi_detector   two or more gas detectors (kind gas or toxic_gas) of one hazard
                         source at HI or HIHI within 5 minutes
    hihi_level1          any HIHI at a level 1 hazard source

Only annunciated activations count (an alarm that activates shelved, suppressed or out of
service opens nothing). The reporting clock: the enterprise reports to the county regulator
within ``report_deadline_s`` (default 3600 s) of the incident's time; from ``report_due_at``
on, an unreported incident is overdue and escalated once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from alerting.lifecycle import CONDITIONS
from hazmon.errors import InputError

STATUSES = ("open", "responding", "closed")
DISPATCH_STATUSES = ("requested", "en_route", "on_scene", "returned", "cancelled")
EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)

DEFAULT_RULES: dict[str, Any] = {
    "report_deadline_s": 3600,
    "rules": [
        {"name": "gas_multi_detector", "conditions": ["HI", "HIHI"],
         "point_kinds": ["gas", "toxic_gas"], "levels": None, "min_points": 2, "window_s": 300,
         "title": "{hazard_source_name} 多点气体报警"},
        {"name": "hihi_level1", "conditions": ["HIHI"], "point_kinds": None, "levels": [1],
         "min_points": 1, "window_s": 0, "title": "{hazard_source_name} 一级重大危险源高高报"},
    ],
}


@dataclass(frozen=True)
class Activation:
    """One annunciated activation of an alarm of a point at a hazard source."""

    event_id: int
    alarm_id: int
    point_id: int
    hazard_source_id: int
    level: int | None
    kind: str
    condition: str
    at: datetime


@dataclass(frozen=True)
class CorrelationRule:
    """One validated correlation rule."""

    name: str
    conditions: frozenset[str]
    point_kinds: frozenset[str] | None
    levels: frozenset[int] | None
    min_points: int
    window_s: float
    title: str

    def applies(self, a: Activation) -> bool:
        return (a.condition in self.conditions
                and (self.point_kinds is None or a.kind in self.point_kinds)
                and (self.levels is None or a.level in self.levels))

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)


@dataclass(frozen=True)
class IncidentRules:
    """The correlation rules and the reporting deadline."""

    rules: tuple[CorrelationRule, ...]
    report_deadline_s: float
    source: dict[str, Any] = field(compare=False, repr=False, default_factory=dict)

    @property
    def longest_window(self) -> timedelta:
        return max((r.window for r in self.rules), default=timedelta(0))

    def report_due(self, occurred_at: datetime) -> datetime:
        return occurred_at + timedelta(seconds=self.report_deadline_s)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise InputError(message)


def _optional_set(value: Any, name: str, item_type: type) -> frozenset[Any] | None:
    if value is None:
        return None
    _require(isinstance(value, list) and len(value) > 0 and all(
        isinstance(v, item_type) and not isinstance(v, bool) for v in value),
        f"{name} must be null or a non-empty list of {item_type.__name__}")
    return frozenset(value)


def _parse_rule(i: int, raw: Any) -> CorrelationRule:
    keys = {"name", "conditions", "point_kinds", "levels", "min_points", "window_s", "title"}
    _require(isinstance(raw, Mapping), f"rules[{i}] must be an object")
    _require(set(raw) <= keys, f"rules[{i}]: unknown keys {sorted(set(raw) - keys)}")
    name = raw.get("name")
    _require(isinstance(name, str) and 0 < len(name) <= 64, f"rules[{i}].name is required")
    conditions = _optional_set(raw.get("conditions"), f"rules[{i}].conditions", str)
    _require(conditions is not None and conditions <= set(CONDITIONS),
             f"rules[{i}].conditions must list alarm conditions of {list(CONDITIONS)}")
    levels = _optional_set(raw.get("levels"), f"rules[{i}].levels", int)
    _require(levels is None or levels <= {1, 2, 3, 4}, f"rules[{i}].levels must be within 1..4")
    min_points, window_s = raw.get("min_points", 1), raw.get("window_s", 0)
    _require(isinstance(min_points, int) and not isinstance(min_points, bool) and 1 <= min_points <= 100,
             f"rules[{i}].min_points must be 1..100")
    _require(isinstance(window_s, int | float) and not isinstance(window_s, bool)
             and 0 <= window_s <= 86400, f"rules[{i}].window_s must be 0..86400")
    title = raw.get("title") or "{hazard_source_name} {rule}"
    _require(isinstance(title, str) and len(title) <= 200, f"rules[{i}].title must be a string")
    return CorrelationRule(name, conditions, _optional_set(raw.get("point_kinds"),  # type: ignore[arg-type]
                                                           f"rules[{i}].point_kinds", str),
                           levels, min_points, float(window_s), title)


def parse_rules(doc: Mapping[str, Any] | None) -> IncidentRules:
    """Validate an incident rules document (missing keys take the defaults)."""
    merged = {**DEFAULT_RULES, **(doc or {})}
    _require(set(merged) <= set(DEFAULT_RULES), f"unknown keys: {sorted(set(merged) - set(DEFAULT_RULES))}")
    deadline = merged["report_deadline_s"]
    _require(isinstance(deadline, int | float) and not isinstance(deadline, bool) and 0 < deadline <= 7 * 86400,
             "report_deadline_s must be > 0 and at most a week")
    raw_rules = merged["rules"]
    _require(isinstance(raw_rules, list) and len(raw_rules) <= 50, "rules must be a list (at most 50)")
    rules = tuple(_parse_rule(i, r) for i, r in enumerate(raw_rules))
    names = [r.name for r in rules]
    _require(len(names) == len(set(names)), "rule names must be unique")
    return IncidentRules(rules, float(deadline), dict(merged))


DEFAULTS = parse_rules(None)


def match(rule: CorrelationRule, new: Activation, recent: Iterable[Activation]) -> tuple[Activation, ...] | None:
    """The activations that, with ``new``, satisfy the rule within one window; else None.

    ``recent`` are other activations (any hazard source; ``new`` may be among them). The
    earliest window that holds ``new`` and enough distinct points wins; all activations of
    applicable points inside it are returned, oldest first.
    """
    if not rule.applies(new):
        return None
    same = {a.event_id: a for a in recent
            if a.hazard_source_id == new.hazard_source_id and rule.applies(a)
            and abs(a.at - new.at) <= rule.window}
    same[new.event_id] = new
    ordered = sorted(same.values(), key=lambda a: (a.at, a.event_id))
    for start in ordered:
        if start.at > new.at:
            break
        end = start.at + rule.window
        if new.at > end:
            continue
        inside = [a for a in ordered if start.at <= a.at <= end]
        if len({a.point_id for a in inside}) >= rule.min_points:
            return tuple(inside)
    return None


def correlate(rules: IncidentRules, new: Activation,
              recent: Iterable[Activation]) -> list[tuple[CorrelationRule, tuple[Activation, ...]]]:
    """Every rule the new activation satisfies, with the activations that satisfy it."""
    recent = list(recent)
    out = []
    for rule in rules.rules:
        found = match(rule, new, recent)
        if found:
            out.append((rule, found))
    return out


def title_for(rule: CorrelationRule, hazard_source: str, hazard_source_name: str) -> str:
    """The incident title of a rule for a hazard source (unknown placeholders left as is)."""
    values = {"hazard_source": hazard_source, "hazard_source_name": hazard_source_name,
              "rule": rule.name}
    try:
        return rule.title.format(**values)[:200]
    except (KeyError, IndexError, ValueError):
        return f"{hazard_source_name} {rule.name}"[:200]


@dataclass(frozen=True)
class ReportClock:
    """Where an incident's reporting clock stands at ``now``."""

    due_at: datetime
    reported_at: datetime | None
    remaining_s: float            # negative once past due
    overdue: bool                 # not reported and past due, or reported late
    late: bool                    # reported after the due instant


def report_clock(due_at: datetime, reported_at: datetime | None, now: datetime) -> ReportClock:
    """The reporting clock: overdue from ``due_at`` on while unreported; a report at or after
    ``due_at`` is late."""
    late = reported_at is not None and reported_at >= due_at
    overdue = late or (reported_at is None and now >= due_at)
    return ReportClock(due_at, reported_at, (due_at - now).total_seconds(), overdue, late)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two WGS 84 points (spherical Earth)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def nearest(resources: Sequence[Mapping[str, Any]], lat: float, lon: float,
            limit: int) -> list[dict[str, Any]]:
    """Resources by distance from (lat, lon), nearest first, each with ``distance_km``."""
    ranked = [{**r, "distance_km": round(haversine_km(lat, lon, r["lat"], r["lon"]), 3)}
              for r in resources]
    ranked.sort(key=lambda r: (r["distance_km"], r.get("id", 0)))
    return ranked[:limit]


# -- the incident report (HTML and PDF): an incident's detail in, a document out ---------------

CHINA = timezone(timedelta(hours=8))
_STATUS_ZH = {"open": "处置中(未派遣)", "responding": "响应中", "closed": "已关闭"}
_ROLE_ZH = {"principal": "主要负责人", "technical": "技术负责人", "operations": "操作负责人"}
_PLAN_ZH = {"emergency_plan": "专项应急预案", "onsite_procedure": "现场处置方案"}


def _t(value: Any) -> str:
    """A time in China time, to the second; anything else as text ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def report_sections(d: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (heading, column names, rows) sections, shared by HTML and PDF."""
    clock = d["report_clock"]
    reporting = ("已报告 " + _t(clock["reported_at"]) + (" (迟报)" if clock["late"] else "")
                 if clock["reported_at"] else ("已超时未报告" if clock["overdue"] else "未报告"))
    summary = [
        ["企业 Enterprise", f"{d['enterprise_name']} ({d['enterprise']})"],
        ["重大危险源 Hazard source", f"{d.get('hazard_source_name') or '-'} ({d.get('hazard_source') or '-'})"
         + (f", {d['level']}级" if d.get("level") else "")],
        ["状态 Status", _STATUS_ZH.get(d["status"], d["status"])],
        ["发生时间 Occurred", _t(d["occurred_at"])],
        ["开启 Opened", f"{_t(d['opened_at'])} by {d['opened_by']}"],
        ["报告时限 Report due", _t(clock["due_at"])],
        ["报告情况 Reporting", reporting + (f" → {d['report_to']}" if d.get("report_to") else "")],
    ]
    sections: list[tuple[str, list[str], list[list[str]]]] = [("概况 Summary", [], summary)]
    record = d.get("hazard_record")
    if record:
        chems = [[c.get("name", ""), c.get("cas") or "", f"{c.get('quantity_t', '')}",
                  f"{c.get('critical_t', '')}", f"{c.get('beta', '')}"] for c in record["chemicals"]]
        heading = (f"危险化学品 Chemicals (S={record['s']:.3f}, R={record['r']:.2f}, "
                   f"α={record['alpha']})")
        sections.append((heading, ["名称", "CAS", "q (t)", "Q (t)", "β"], chems))
        people = [[_ROLE_ZH[role], p["name"], p["phone"]] if p else [_ROLE_ZH[role], "(未指定)", ""]
                  for role, p in record["responsibles"].items()]
        sections.append(("包保责任人 Responsible people", ["职责", "姓名", "电话"], people))
        plans = [[_PLAN_ZH.get(p["kind"], p["kind"]), p["title"], p.get("version") or "",
                  _t(p.get("last_drill_on")), "逾期" if p["drill_overdue"] else ""]
                 for p in record["plans"]]
        sections.append(("预案 Plans", ["类别", "名称", "版本", "最近演练", ""], plans))
    alarms = [[_t(a["activated_at"]), a.get("tag") or a.get("gateway") or "", a["condition"],
               a["priority"], "" if a.get("value") is None else f"{a['value']:g}", a["state"]]
              for a in d["alarms"]]
    sections.append(("报警 Alarms", ["时间", "位号", "条件", "优先级", "值", "状态"], alarms))
    dispatched = [[_t(x["dispatched_at"]), x["resource_name"], x["what"],
                   "" if x.get("distance_km") is None else f"{x['distance_km']:.1f} km", x["status"]]
                  for x in d["dispatches"]]
    sections.append(("调度 Dispatches", ["时间", "资源", "内容", "距离", "状态"], dispatched))
    timeline = [[_t(e["at"]), e["actor"], e["kind"], e["text"]] for e in d["timeline"]]
    sections.append(("时间线 Timeline", ["时间", "人员", "类别", "内容"], timeline))
    return sections


def render_html(d: Mapping[str, Any]) -> str:
    """The incident report as a self-contained, printable HTML page."""
    from html import escape

    head = (f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<title>{escape(d['title'])}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #999;"
            "padding:4px 8px;text-align:left}h1{font-size:1.5em}</style></head><body>")
    parts = [head,
             f"<h1>{escape(d['title'])}</h1><p>事件编号 Incident #{d['id']}</p>"]
    for heading, columns, rows in report_sections(d):
        parts.append(f"<h2>{escape(heading)}</h2><table>")
        if columns:
            parts.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>")
        for row in rows or [["-"]]:
            parts.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


PDF_CELL_CHARS = 1500


def _cell_text(value: Any) -> str:
    """A table cell for the PDF: long texts are cut (with a mark), very long words broken."""
    text = str(value)
    if len(text) > PDF_CELL_CHARS:
        text = text[:PDF_CELL_CHARS] + " …(see the HTML report)"
    return " ".join(w if len(w) <= 60 else " ".join(w[i:i + 60] for i in range(0, len(w), 60))
                    for w in text.split(" "))


def render_pdf(d: Mapping[str, Any]) -> bytes:
    """The incident report as PDF (ReportLab; Chinese in the Adobe CID font STSong-Light,
    which PDF viewers supply, so nothing is embedded)."""
    import io
    from html import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    body = ParagraphStyle("body", fontName="STSong-Light", fontSize=9, leading=12, wordWrap="CJK")
    h1 = ParagraphStyle("h1", parent=body, fontSize=16, leading=22, spaceAfter=6)
    h2 = ParagraphStyle("h2", parent=body, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4,
                        keepWithNext=1)
    story: list[Any] = [Paragraph(escape(d["title"]), h1),
                        Paragraph(f"事件编号 Incident #{d['id']}", body)]
    for heading, columns, rows in report_sections(d):
        story.append(Paragraph(escape(heading), h2))
        data = ([columns] if columns else []) + (rows or [["-"]])
        cells = [[Paragraph(escape(_cell_text(v)), body) for v in row] for row in data]
        # Fixed widths make long text wrap, and rows may split over pages: a long note must not
        # overflow a page (LayoutError). The HTML export keeps every character.
        width = (A4[0] - 30 * mm) / max(len(r) for r in data)
        table = Table(cells, colWidths=[width] * max(len(r) for r in data),
                      repeatRows=1 if columns else 0, hAlign="LEFT", splitInRow=1)
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP")]
                                  + ([("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]
                                     if columns else [])))
        story += [table, Spacer(1, 2 * mm)]
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=d["title"], author="hazmon",
                      leftMargin=15 * mm, rightMargin=15 * mm).build(story)
    return out.getvalue()
