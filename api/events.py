"""Alarm changes for event-stream clients: LISTEN once, fan out to every subscriber.

Every alarm change writes an ``alarm_events`` row and notifies ``hazmon_alarms`` with
``"<alarm id>:<event id>"`` in the same transaction. One listener task per API process turns
each notification into the alarm as the list shows it and hands it to every subscriber queue.
The event id is the SSE ``id``, so a client that reconnects with ``Last-Event-ID`` gets what it
missed from the event log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from alerting.repository import ALARM_SELECT, ALARMS_CHANNEL

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
RESUME_LIMIT = 5000


@dataclass
class AlarmEvent:
    """One alarm change: its event id and the alarm after the change."""

    event_id: int
    alarm: dict[str, Any]


class AlarmBroadcaster:
    """Listens for alarm changes and fans them out to subscriber queues."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.subscribers: set[asyncio.Queue[AlarmEvent | None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alarm-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        for q in list(self.subscribers):
            q.put_nowait(None)

    def subscribe(self) -> asyncio.Queue[AlarmEvent | None]:
        q: asyncio.Queue[AlarmEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[AlarmEvent | None]) -> None:
        self.subscribers.discard(q)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database went away: listen again
                log.warning("alarm listener lost the database (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as listen, \
                await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as query:
            await listen.execute(f"LISTEN {ALARMS_CHANNEL}")
            async for note in listen.notifies():
                alarm_id, _, event_id = note.payload.partition(":")
                if not (alarm_id.isdigit() and event_id.isdigit()):
                    continue
                cur = query.cursor(row_factory=dict_row)
                await cur.execute(ALARM_SELECT + " WHERE a.id = %s", (int(alarm_id),))
                row = await cur.fetchone()
                if row is not None:
                    self._publish(AlarmEvent(int(event_id), row))

    def _publish(self, event: AlarmEvent) -> None:
        for q in list(self.subscribers):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                # A client that cannot keep up is cut off; it reconnects with Last-Event-ID.
                self.subscribers.discard(q)


def missed_events(conn: psycopg.Connection, after_event_id: int) -> list[AlarmEvent]:
    """Alarm changes after an event id (for Last-Event-ID), each with the alarm as it is now."""
    rows = conn.execute(
        "SELECT id, alarm_id FROM alarm_events WHERE id > %s ORDER BY id LIMIT %s",
        (after_event_id, RESUME_LIMIT)).fetchall()
    if not rows:
        return []
    ids = sorted({a for _, a in rows})
    alarms = {r["id"]: r for r in conn.cursor(row_factory=dict_row).execute(
        ALARM_SELECT + " WHERE a.id = ANY(%s)", (ids,))}
    return [AlarmEvent(int(e), alarms[a]) for e, a in rows if a in alarms]
