"""The alarm performance report (ISA-18.2 §16, EEMUA 191), pure: counts in, figures out.

``alerting.report_repository`` counts activations in the database; this module turns the
counts into rates and shares and holds the thresholds the figures are judged by. Definitions
(an *activation* is an ``alarm_events`` row with action ``activate``; its time is
``coalesce(reading_ts, at)``, the event time of the reading that raised it; only activations
with ``start <= time < end`` are counted):

- ``per_10min`` / ``per_day``: activations over the range's length, scaled to 10 min / 1 day.
- ``not_annunciated``: the activations recorded while the alarm was shelved, suppressed or
  out of service (``to_state`` one of those). They are counted in every figure (a bad actor
  stays one when shelved); this count shows how much of the load the operator did not see.
- flood: the range is cut into 10-minute windows aligned to the Unix epoch; every window that
  overlaps ``[start, end)`` counts, partial ones at the edges included (they hold only the
  activations inside the range). A window with more than 10 activations is a flood window.
  The report's scope (one enterprise, or all) is taken as one operator's console.
- chattering: an alarm key (enterprise + tag + condition, or enterprise + gateway + condition
  for gateway alarms) with 3 or more activations in a closed 60-second window
  ``[t - 60 s, t]`` (activations at t, t+30 s and t+60 s chatter; at t+60.001 s they do not).
- stale: an alarm whose condition became active at A (the first activation since its last
  return before ``end``), stayed active until ``end`` (no return before ``end``) and
  ``end - A > 24 h`` (active exactly 24 h is not stale). Judged from the event log, so a
  past ``end`` gives the figure as it was then; shelved or suppressed alarms are included
  (their ``state`` is listed).
- top 10: the alarm keys with most activations; ties by enterprise, tag, gateway, condition.
- priority mix: activations by the alarm's priority, beside the EEMUA targets.
- shelved / suppressed: events in the range whose ``to_state`` is SHELVED / SUPPRESSED and
  whose ``from_state`` is not (so an activation recorded while shelved is not a new shelve),
  and the alarms in that state at the time of the request.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FLOOD_WINDOW = timedelta(minutes=10)
FLOOD_THRESHOLD = 10          # more than this many activations in a window is a flood
CHATTER_WINDOW = timedelta(seconds=60)
CHATTER_MIN = 3               # this many activations within the window is chattering
STALE_AFTER = timedelta(hours=24)
PRIORITY_TARGETS = {"high": 0.05, "medium": 0.15, "low": 0.80}
TOP_N = 10
LIST_LIMIT = 500              # chattering and stale lists are cut here (their counts are not)
MAX_RANGE = timedelta(days=366)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass
class ReportCounts:
    """What the database counted for one report (see the module docstring)."""

    activations: int = 0
    not_annunciated: int = 0                       # activations recorded while masked
    by_priority: dict[str, int] = field(default_factory=dict)
    flood_windows: int = 0
    peak_10min: int = 0
    chattering: list[dict[str, Any]] = field(default_factory=list)
    chattering_count: int = 0
    stale: list[dict[str, Any]] = field(default_factory=list)
    stale_count: int = 0
    top: list[dict[str, Any]] = field(default_factory=list)
    shelve_events: int = 0
    shelved_now: int = 0
    suppress_events: int = 0
    suppressed_now: int = 0


def window_count(start: datetime, end: datetime, width: timedelta = FLOOD_WINDOW) -> int:
    """Number of epoch-aligned windows of ``width`` that overlap ``[start, end)``."""
    if end <= start:
        return 0
    first = (start - _EPOCH) // width
    last = (end - _US - _EPOCH) // width   # the window holding the last instant before end
    return last - first + 1


def share(part: int, whole: int) -> float:
    """part / whole, 0 when there is nothing to share."""
    return part / whole if whole else 0.0


def summarize(counts: ReportCounts, *, start: datetime, end: datetime,
              enterprise: str | None) -> dict[str, Any]:
    """The report as the API returns it."""
    total = counts.activations
    seconds = (end - start).total_seconds()
    windows = window_count(start, end)
    top = [{**row, "share": share(row["activations"], total)} for row in counts.top]
    return {
        "start": start, "end": end, "enterprise": enterprise,
        "activations": total,
        "not_annunciated": counts.not_annunciated,
        "per_10min": total * FLOOD_WINDOW.total_seconds() / seconds if seconds else 0.0,
        "per_day": total * 86400 / seconds if seconds else 0.0,
        "flood": {"window_s": int(FLOOD_WINDOW.total_seconds()), "threshold": FLOOD_THRESHOLD,
                  "windows": windows, "flood_windows": counts.flood_windows,
                  "flood_share": share(counts.flood_windows, windows),
                  "peak_10min": counts.peak_10min},
        "chattering": counts.chattering, "chattering_count": counts.chattering_count,
        "stale": counts.stale, "stale_count": counts.stale_count,
        "top10": top,
        "top10_share": share(sum(row["activations"] for row in counts.top), total),
        "priority_mix": {p: {"count": counts.by_priority.get(p, 0),
                             "share": share(counts.by_priority.get(p, 0), total),
                             "target": target}
                         for p, target in PRIORITY_TARGETS.items()},
        "shelved": {"events": counts.shelve_events, "current": counts.shelved_now},
        "suppressed": {"events": counts.suppress_events, "current": counts.suppressed_now},
    }


# --- CSV -------------------------------------------------------------------------------------

_TABLES = (
    ("top 10 alarms", "top10",
     ("enterprise", "tag", "gateway", "condition", "activations", "share")),
    ("chattering alarms (3 or more activations within 60 s)", "chattering",
     ("enterprise", "tag", "gateway", "condition", "max_per_minute", "activations")),
    ("stale alarms (condition active more than 24 h at end)", "stale",
     ("enterprise", "tag", "gateway", "condition", "priority", "state", "active_since_utc",
      "active_hours")),
)


def _cell(value: Any) -> Any:
    """A value as a spreadsheet reads it: UTC times without 'T', no formulas from text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value   # a tag like "-A1" must not become a formula
    return "" if value is None else value


def _metrics(r: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every scalar figure of the report as (metric, value), in reading order."""
    flood = r["flood"]
    rows: list[tuple[str, Any]] = [
        ("start_utc", r["start"]), ("end_utc", r["end"]),
        ("enterprise", r["enterprise"] or "(all)"),
        *((k, r[k]) for k in ("activations", "not_annunciated", "per_10min", "per_day")),
        ("flood_window_s", flood["window_s"]), ("flood_threshold", flood["threshold"]),
        ("windows", flood["windows"]), ("flood_windows", flood["flood_windows"]),
        ("flood_share", flood["flood_share"]), ("peak_10min", flood["peak_10min"]),
        ("chattering_count", r["chattering_count"]), ("stale_count", r["stale_count"]),
        ("top10_share", r["top10_share"])]
    for priority, mix in r["priority_mix"].items():
        rows += [(f"priority_{priority}_{k}", v) for k, v in mix.items()]
    for kind in ("shelved", "suppressed"):
        rows += [(f"{kind}_{k}", v) for k, v in r[kind].items()]
    return rows


def to_csv(r: dict[str, Any]) -> str:
    """The report (as ``summarize`` gives it) as CSV: a ``metric,value`` block with every
    scalar figure, then, each after an empty row and a title row, the top-10, chattering and
    stale tables with their own headers. Shares are fractions (0..1); times are UTC as
    ``YYYY-MM-DD HH:MM:SS`` (what spreadsheets parse); the overall scope is ``(all)``."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(("metric", "value"))
    w.writerows((k, _cell(v)) for k, v in _metrics(r))
    for title, key, columns in _TABLES:
        w.writerows(([], [title], columns))
        for row in r[key]:
            full = {**row, "active_since_utc": row.get("active_since"),
                    "active_hours": row["active_s"] / 3600 if "active_s" in row else None}
            w.writerow([_cell(full[c]) for c in columns])
    return out.getvalue()
