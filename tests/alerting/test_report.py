"""The alarm performance report against a real database, every figure on both sides of its edge.

Alarms and their events are written directly with known times; each test works in an
enterprise of its own (and the overall-scope test in a year of its own), so tests sharing
the module's database do not see each other's activations.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerting import report
from alerting import report_repository as repo
from hazmon.errors import InputError

T0 = datetime(2026, 1, 1, tzinfo=UTC)    # on a 10-minute boundary of the epoch
S, MS, US = timedelta(seconds=1), timedelta(milliseconds=1), timedelta(microseconds=1)
MIN, H = timedelta(minutes=1), timedelta(hours=1)


class Plant:
    """An enterprise of its own, with helpers that write alarms and their event log."""

    def __init__(self, conn: psycopg.Connection, code: str | None = None) -> None:
        self.conn = conn
        self.code = code or "E-" + uuid.uuid4().hex[:8]
        self.id = conn.execute("INSERT INTO enterprises (code, name) VALUES (%s, %s) RETURNING id",
                               (self.code, self.code)).fetchone()[0]  # type: ignore[index]
        self.points: dict[str, int] = {}

    def point(self, tag: str) -> int:
        if tag not in self.points:
            self.points[tag] = self.conn.execute(
                "INSERT INTO points (enterprise_id, tag, kind) VALUES (%s, %s, 'pressure') RETURNING id",
                (self.id, tag)).fetchone()[0]  # type: ignore[index]
        return self.points[tag]

    def alarm(self, tag: str | None, condition: str = "HI", priority: str = "low", *,
              gateway: str | None = None, state: str = "UNACK_ACTIVE", active: bool = True) -> int:
        """An alarm row (of a point, or of a gateway when ``tag`` is None)."""
        point_id = self.point(tag) if tag else None
        return int(self.conn.execute(
            """INSERT INTO alarms (enterprise_id, point_id, gateway, condition, priority, state,
                                   active, activated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (self.id, point_id, gateway, condition, priority, state, active, T0)).fetchone()[0])  # type: ignore[index]

    def event(self, alarm_id: int, action: str, t: datetime, *, to_state: str = "UNACK_ACTIVE",
              from_state: str | None = None, reading_ts: bool = True,
              at: datetime | None = None) -> None:
        """An event at ``t``: by default as the engine writes it (reading_ts = t, ``at`` the wall
        clock now, which the report must not use); ``reading_ts=False`` leaves it NULL and
        puts ``t`` in ``at``."""
        rts = t if reading_ts else None
        at = at or (datetime.now(UTC) if reading_ts else t)
        self.conn.execute(
            """INSERT INTO alarm_events (alarm_id, at, actor, action, from_state, to_state, reading_ts)
               VALUES (%s, %s, 'test', %s, %s, %s, %s)""",
            (alarm_id, at, action, from_state, to_state, rts))

    def activations(self, tag: str | None, times: list[datetime], condition: str = "HI",
                    priority: str = "low", gateway: str | None = None,
                    state: str = "UNACK_ACTIVE") -> int:
        """One alarm activated at each of ``times``."""
        alarm_id = self.alarm(tag, condition, priority, gateway=gateway, state=state)
        for t in times:
            self.event(alarm_id, "activate", t)
        return alarm_id


def run(conn: psycopg.Connection, start: datetime, end: datetime,
        enterprise: str | None) -> dict[str, Any]:
    conn.commit()
    counts = repo.alarm_performance(conn, start=start, end=end, enterprise=enterprise)
    return report.summarize(counts, start=start, end=end, enterprise=enterprise)


@pytest.fixture
def plant(conn: psycopg.Connection) -> Plant:
    return Plant(conn)


def every(step: timedelta, n: int, first: datetime = T0) -> list[datetime]:
    return [first + i * step for i in range(n)]


# --- 10-minute windows (pure) ----------------------------------------------------------------

@pytest.mark.parametrize("start, end, windows", [
    (T0, T0 + 10 * MIN, 1),              # exactly one aligned window
    (T0, T0 + 10 * MIN + US, 2),         # one microsecond into the next window
    (T0 + S, T0 + 10 * MIN, 1),          # partial window at the start
    (T0 + 9 * MIN, T0 + 11 * MIN, 2),    # two minutes straddling a boundary: two partial windows
    (T0, T0 + 24 * H, 144),              # a day
    (T0 + S, T0 + 24 * H + S, 145),      # a day off the grid touches 145 windows
    (T0, T0, 0),                         # empty range
])
def test_window_count(start: datetime, end: datetime, windows: int) -> None:
    assert report.window_count(start, end) == windows


# --- activations and rates -------------------------------------------------------------------

def test_empty_range_gives_zeros(conn: psycopg.Connection, plant: Plant) -> None:
    r = run(conn, T0, T0 + 24 * H, plant.code)
    assert r["activations"] == 0 and r["per_10min"] == 0 and r["per_day"] == 0
    assert r["flood"] == {"window_s": 600, "threshold": 10, "windows": 144, "flood_windows": 0,
                          "flood_share": 0.0, "peak_10min": 0}
    assert r["chattering"] == [] and r["stale"] == [] and r["top10"] == [] and r["top10_share"] == 0
    assert {p: m["count"] for p, m in r["priority_mix"].items()} == {"high": 0, "medium": 0, "low": 0}
    assert r["shelved"] == {"events": 0, "current": 0} == r["suppressed"]


@pytest.mark.parametrize("hours, n, per_10min, per_day", [
    (24, 144, 1.0, 144.0),   # one every 10 min for a day: the steady-state target
    (12, 72, 1.0, 144.0),    # half a day: per_day is scaled up
    (1, 3, 0.5, 72.0),       # an hour with 3
])
def test_rates(conn: psycopg.Connection, plant: Plant, hours: int, n: int, per_10min: float,
               per_day: float) -> None:
    step = hours * H / n
    for i, t in enumerate(every(step, n)):
        plant.activations(f"R-{i}", [t])   # one alarm each: no chattering, no flood
    r = run(conn, T0, T0 + hours * H, plant.code)
    assert r["activations"] == n
    assert r["per_10min"] == pytest.approx(per_10min) and r["per_day"] == pytest.approx(per_day)


@pytest.mark.parametrize("t, counted", [
    (T0, True),                  # exactly at start: inclusive
    (T0 - US, False),            # just before start
    (T0 + H - US, True),         # just before end
    (T0 + H, False),             # exactly at end: exclusive
])
def test_range_boundaries(conn: psycopg.Connection, plant: Plant, t: datetime, counted: bool) -> None:
    plant.activations("B-1", [t])
    assert run(conn, T0, T0 + H, plant.code)["activations"] == int(counted)


def test_activation_time_is_the_reading_time(conn: psycopg.Connection, plant: Plant) -> None:
    alarm = plant.alarm("RT-1")
    plant.event(alarm, "activate", T0 + MIN)                           # reading_ts inside
    plant.event(alarm, "activate", T0 + 2 * H, at=T0 + 10 * MIN)       # reading_ts outside, at in
    plant.event(alarm, "activate", T0 + 5 * MIN, reading_ts=False)     # no reading_ts: at inside
    plant.event(alarm, "activate", T0 + 2 * H, reading_ts=False)       # no reading_ts: at outside
    plant.event(alarm, "return", T0 + 3 * MIN, to_state="RTN_UNACK")   # not an activation
    plant.event(alarm, "ack", T0 + 4 * MIN, to_state="ACK_ACTIVE", reading_ts=False)  # nor this
    assert run(conn, T0, T0 + H, plant.code)["activations"] == 2


# --- flood -----------------------------------------------------------------------------------

@pytest.mark.parametrize("times, flood_windows, peak", [
    (every(50 * S, 10), 0, 10),                          # exactly 10 in a window: not a flood
    (every(50 * S, 11), 1, 11),                          # 11 in a window: a flood
    (every(S, 10, T0 + 10 * MIN - 10 * S) + [T0 + 10 * MIN], 0, 10),  # 11 across an edge: none
    (every(S, 11, T0 + 10 * MIN - 11 * S), 1, 11),       # 11 in the last 11 s of a window
    (every(5 * S, 11) + every(5 * S, 11, T0 + 30 * MIN), 2, 11),  # two separate floods
])
def test_flood(conn: psycopg.Connection, plant: Plant, times: list[datetime], flood_windows: int,
               peak: int) -> None:
    for i, t in enumerate(times):
        plant.activations(f"F-{i}", [t])
    r = run(conn, T0, T0 + H, plant.code)
    assert r["flood"]["windows"] == 6 and r["flood"]["flood_windows"] == flood_windows
    assert r["flood"]["flood_share"] == pytest.approx(flood_windows / 6)
    assert r["flood"]["peak_10min"] == peak


# --- chattering ------------------------------------------------------------------------------

@pytest.mark.parametrize("offsets, max_per_minute", [
    ([0, 30, 60], 3),                 # t, t+30 s, t+60 s: the 60 s window is closed: chattering
    ([0, 30, 60.001], None),          # the third 1 ms too late: only 2 in any window
    ([0, 30], None),                  # 2 activations: not chattering
    ([0, 10, 20, 30, 200], 4),        # 4 within 30 s, then one much later
    ([0, 0, 0], 3),                   # three at the same instant
])
def test_chattering_edges(conn: psycopg.Connection, plant: Plant, offsets: list[float],
                          max_per_minute: int | None) -> None:
    plant.activations("C-1", [T0 + timedelta(seconds=o) for o in offsets])
    r = run(conn, T0, T0 + H, plant.code)
    if max_per_minute is None:
        assert r["chattering"] == [] and r["chattering_count"] == 0
    else:
        assert r["chattering"] == [{"enterprise": plant.code, "tag": "C-1", "gateway": None,
                                    "condition": "HI", "max_per_minute": max_per_minute,
                                    "activations": len(offsets)}]
        assert r["chattering_count"] == 1


def test_chattering_is_per_alarm_key(conn: psycopg.Connection, plant: Plant) -> None:
    # the same point and condition over two alarm rows (closed, then raised anew): one key
    plant.activations("K-1", [T0, T0 + 10 * S], "HI", state="CLOSED")
    plant.activations("K-1", [T0 + 20 * S], "HI")
    # two conditions of one point, 2 each within a minute: two keys, neither chatters
    plant.activations("K-2", [T0, T0 + S], "HI")
    plant.activations("K-2", [T0 + 2 * S, T0 + 3 * S], "HIHI")
    # a gateway alarm chatters under its gateway
    plant.activations(None, [T0, T0 + S, T0 + 2 * S], "COMM", gateway="gw-9")
    # activations just outside the range do not count towards a window inside it
    plant.activations("K-3", [T0 - S, T0 - 2 * S, T0 + S])
    chat = run(conn, T0, T0 + H, plant.code)["chattering"]
    assert [(c["tag"], c["gateway"], c["condition"], c["max_per_minute"]) for c in chat] == [
        ("K-1", None, "HI", 3), (None, "gw-9", "COMM", 3)]


# --- stale -----------------------------------------------------------------------------------

END = T0 + 3 * 24 * H


@pytest.mark.parametrize("events, active, stale_since", [
    # active exactly 24 h at end: not stale (stale is more than 24 h)
    ([("activate", END - 24 * H)], True, None),
    # 24 h + 1 s: stale
    ([("activate", END - 24 * H - S)], True, END - 24 * H - S),
    # returned 1 s before end: not active at end
    ([("activate", END - 48 * H), ("return", END - S)], False, None),
    # returned exactly at end (outside the range): still active throughout it
    ([("activate", END - 48 * H), ("return", END)], False, END - 48 * H),
    # returned after end, reactivated since: judged at end, not now
    ([("activate", END - 48 * H), ("return", END + H), ("activate", END + 2 * H)], True,
     END - 48 * H),
    # returned and reactivated 2 h before end: the run counts from the reactivation
    ([("activate", END - 48 * H), ("return", END - 30 * H), ("activate", END - 2 * H)], True, None),
    # returned and reactivated 25 h before end: stale since the reactivation
    ([("activate", END - 48 * H), ("return", END - 30 * H), ("activate", END - 25 * H)], True,
     END - 25 * H),
    # two earlier runs: the run at end starts after the last return, not the first
    ([("activate", END - 60 * H), ("return", END - 50 * H), ("activate", END - 40 * H),
      ("return", END - 30 * H), ("activate", END - 2 * H)], True, None),
    # a repeated activation (no return between) does not restart the run
    ([("activate", END - 30 * H), ("activate", END - 2 * H)], True, END - 30 * H),
    # activated only after end: not active at end
    ([("activate", END + H)], True, None),
])
def test_stale(conn: psycopg.Connection, plant: Plant, events: list[tuple[str, datetime]],
               active: bool, stale_since: datetime | None) -> None:
    alarm = plant.alarm("S-1", active=active, state="UNACK_ACTIVE" if active else "RTN_UNACK")
    for action, t in events:
        plant.event(alarm, action, t, to_state="UNACK_ACTIVE" if action == "activate" else "RTN_UNACK")
    r = run(conn, END - 24 * H, END, plant.code)
    if stale_since is None:
        assert r["stale"] == [] and r["stale_count"] == 0
    else:
        [s] = r["stale"]
        assert (s["id"], s["tag"], s["condition"], s["active_since"]) == (alarm, "S-1", "HI", stale_since)
        assert s["active_s"] == pytest.approx((END - stale_since).total_seconds())
        assert r["stale_count"] == 1


# --- top 10 and priority mix -----------------------------------------------------------------

def test_top10_order_and_shares(conn: psycopg.Connection, plant: Plant) -> None:
    # 12 keys with 12, 11, ..., 1 activations (2 min apart: no chattering); T-06 and T-07 both
    # get 7 by giving T-07 one less, so the tie is broken by tag
    counts = {f"T-{i:02d}": 13 - i for i in range(1, 13)}
    counts["T-07"] = 7
    for tag, n in counts.items():
        plant.activations(tag, every(2 * MIN, n))
    plant.activations(None, every(2 * MIN, 4), "COMM", gateway="gw-1")   # a gateway alarm
    total = sum(counts.values()) + 4
    r = run(conn, T0, T0 + H, plant.code)
    assert r["activations"] == total
    top = r["top10"]
    assert [(t["tag"], t["gateway"], t["activations"]) for t in top] == [
        ("T-01", None, 12), ("T-02", None, 11), ("T-03", None, 10), ("T-04", None, 9),
        ("T-05", None, 8), ("T-06", None, 7), ("T-07", None, 7), ("T-08", None, 5),
        ("T-09", None, 4), (None, "gw-1", 4)]   # ties by tag, a gateway alarm after points
    assert top[0]["share"] == pytest.approx(12 / total)
    assert r["top10_share"] == pytest.approx((12 + 11 + 10 + 9 + 8 + 7 + 7 + 5 + 4 + 4) / total)


def test_priority_mix(conn: psycopg.Connection, plant: Plant) -> None:
    # 1 high, 3 medium, 16 low: exactly the EEMUA targets
    for i, priority in enumerate(["high"] + ["medium"] * 3 + ["low"] * 16):
        plant.activations(f"P-{i}", [T0 + i * MIN], priority=priority)
    mix = run(conn, T0, T0 + H, plant.code)["priority_mix"]
    assert mix == {"high": {"count": 1, "share": pytest.approx(0.05), "target": 0.05},
                   "medium": {"count": 3, "share": pytest.approx(0.15), "target": 0.15},
                   "low": {"count": 16, "share": pytest.approx(0.80), "target": 0.80}}


# --- shelved and suppressed ------------------------------------------------------------------

def test_shelved_and_suppressed(conn: psycopg.Connection, plant: Plant) -> None:
    shelved = plant.alarm("M-1", state="SHELVED")
    plant.event(shelved, "activate", T0 + MIN)
    # an operator shelves it: counted (no reading_ts: the time is `at`)
    plant.event(shelved, "shelve", T0 + 2 * MIN, from_state="UNACK_ACTIVE", to_state="SHELVED",
                reading_ts=False)
    # an activation while shelved (SHELVED -> SHELVED): not a new shelve, but not annunciated
    plant.event(shelved, "activate", T0 + 3 * MIN, from_state="SHELVED", to_state="SHELVED")
    # a shelve just before the range: not counted
    other = plant.alarm("M-2", state="ACK_ACTIVE")
    plant.event(other, "shelve", T0 - S, from_state="UNACK_ACTIVE", to_state="SHELVED",
                reading_ts=False)
    # a new alarm born suppressed (NULL -> SUPPRESSED) and a suppression of an open alarm
    born = plant.alarm("M-3", state="SUPPRESSED")
    plant.event(born, "activate", T0 + 4 * MIN, to_state="SUPPRESSED")
    open_ = plant.alarm("M-4", state="SUPPRESSED")
    plant.event(open_, "suppress", T0 + 5 * MIN, from_state="ACK_ACTIVE", to_state="SUPPRESSED",
                reading_ts=False)
    r = run(conn, T0, T0 + H, plant.code)
    assert r["shelved"] == {"events": 1, "current": 1}
    assert r["suppressed"] == {"events": 2, "current": 2}
    assert r["activations"] == 3 and r["not_annunciated"] == 2


# --- scope -----------------------------------------------------------------------------------

def test_enterprise_filter_and_overall(conn: psycopg.Connection) -> None:
    # a year no other test uses, so the overall figures are these two enterprises' alone
    t = datetime(2031, 6, 1, tzinfo=UTC)
    a, b = Plant(conn), Plant(conn)
    a.activations("X-1", [t, t + MIN], priority="high")
    b.activations("X-1", [t + 2 * MIN], priority="low")
    b.alarm("X-2", state="SHELVED")
    assert run(conn, t, t + H, a.code)["activations"] == 2
    only_b = run(conn, t, t + H, b.code)
    assert only_b["activations"] == 1 and only_b["shelved"]["current"] == 1
    assert only_b["top10"][0]["enterprise"] == b.code
    overall = run(conn, t, t + H, None)
    assert overall["activations"] == 3 and overall["enterprise"] is None
    assert [(x["enterprise"], x["activations"]) for x in overall["top10"]] == [(a.code, 2), (b.code, 1)]
    assert overall["priority_mix"]["high"]["count"] == 2


def test_unknown_enterprise_is_an_input_error(conn: psycopg.Connection) -> None:
    with pytest.raises(InputError, match="NOPE"):
        run(conn, T0, T0 + H, "NOPE")


# --- CSV (pure) ------------------------------------------------------------------------------

def test_csv_layout() -> None:
    counts = report.ReportCounts(
        activations=4, by_priority={"high": 1, "low": 3},
        top=[{"enterprise": "E1", "tag": "-A1", "gateway": None, "condition": "HI", "activations": 3},
             {"enterprise": "E1", "tag": None, "gateway": "gw1", "condition": "COMM",
              "activations": 1}],
        stale=[{"id": 7, "enterprise": "E1", "tag": "P-9", "gateway": None, "condition": "LO",
                "priority": "medium", "state": "ACK_ACTIVE", "active_since": T0 - 6 * H,
                "active_s": 30 * 3600.0}], stale_count=1)
    text = report.to_csv(report.summarize(counts, start=T0, end=T0 + 24 * H, enterprise=None))
    rows = list(csv.reader(io.StringIO(text)))
    blank = rows.index([])
    metrics = dict(rows[1:blank])
    # a metric,value block first: UTC times a spreadsheet parses, "(all)" for the overall scope
    assert rows[0] == ["metric", "value"]
    assert metrics["start_utc"] == "2026-01-01 00:00:00" and metrics["enterprise"] == "(all)"
    assert metrics["activations"] == "4" and metrics["windows"] == "144"
    assert metrics["priority_high_share"] == "0.25" and metrics["priority_low_target"] == "0.8"
    # then titled tables; a tag starting with "-" is quoted so it is not a formula
    top = rows.index(["top 10 alarms"])
    assert rows[top + 1:top + 4] == [
        ["enterprise", "tag", "gateway", "condition", "activations", "share"],
        ["E1", "'-A1", "", "HI", "3", "0.75"], ["E1", "", "gw1", "COMM", "1", "0.25"]]
    # an empty table keeps its title and header
    chat = rows.index(["chattering alarms (3 or more activations within 60 s)"])
    assert rows[chat + 2] == []
    stale = rows.index(["stale alarms (condition active more than 24 h at end)"])
    assert rows[stale + 2] == ["E1", "P-9", "", "LO", "medium", "ACK_ACTIVE",
                               "2025-12-31 18:00:00", "30.0"]
