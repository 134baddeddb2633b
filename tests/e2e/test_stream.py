"""The alarm event stream: one event per change, filtered, resumable with Last-Event-ID."""

from __future__ import annotations

import json
import queue
import threading
import time

import httpx
import pytest

from tests.support import Gateway, Hazmon

E = "E-SSE"
POINTS = "tag,kind,hi,hihi,deadband\nS-1,pressure,80,90,0\nS-2,pressure,80,90,0\n"


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> httpx.Client:
    client = hazmon.api()
    client.post("/api/v1/enterprises", json={"code": E, "name": "stream"})
    client.put(f"/api/v1/enterprises/{E}/points", content=POINTS, headers={"Content-Type": "text/csv"})
    return client


class Listener:
    """Reads an event stream in a thread, collecting (id, event, data)."""

    def __init__(self, hazmon: Hazmon, params: dict, last_event_id: str | None = None) -> None:
        self.events: queue.Queue[tuple[str, str, dict]] = queue.Queue()
        headers = {"Authorization": f"Bearer {hazmon.token}"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.client = httpx.Client(base_url=hazmon.url, timeout=httpx.Timeout(5, read=None))
        self.response = self.client.send(
            self.client.build_request("GET", "/api/v1/alarms/stream", params=params, headers=headers),
            stream=True)
        assert self.response.status_code == 200
        assert self.response.headers["content-type"].startswith("text/event-stream")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if not line:
                    if "data" in fields:
                        self.events.put((fields.get("id", ""), fields.get("event", ""),
                                         json.loads(fields["data"])))
                    fields = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
        except httpx.HTTPError:
            pass

    def next(self, timeout: float = 20) -> tuple[str, str, dict]:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.response.close()
        self.client.close()


def test_stream_delivers_changes_filtered_and_resumes(hazmon: Hazmon, api: httpx.Client,
                                                      mqtt_url: str) -> None:
    gw = Gateway(mqtt_url, E)
    only_s1 = Listener(hazmon, {"enterprise": E, "tag": "S-1"})
    time.sleep(0.3)
    t = time.time_ns() // 1_000_000 - 60_000
    try:
        gw.publish([{"tag": "S-2", "value": 85, "ts": t}])   # filtered out
        gw.publish([{"tag": "S-1", "value": 85, "ts": t}])   # HI on S-1
        event_id, kind, alarm = only_s1.next()
        assert kind == "alarm" and alarm["tag"] == "S-1" and alarm["condition"] == "HI"
        assert alarm["state"] == "UNACK_ACTIVE" and int(event_id) > 0
        api.post(f"/api/v1/alarms/{alarm['id']}/ack")
        _, _, acked = only_s1.next()
        assert acked["id"] == alarm["id"] and acked["state"] == "ACK_ACTIVE"
        only_s1.close()
        # resume from the first event: the ack is delivered again, S-2 still filtered out
        resumed = Listener(hazmon, {"enterprise": E, "tag": "S-1"}, last_event_id=event_id)
        _, _, again = resumed.next()
        assert again["id"] == alarm["id"] and again["state"] == "ACK_ACTIVE"
        resumed.close()
    finally:
        gw.close()


def test_stream_needs_a_token_and_valid_filters(hazmon: Hazmon) -> None:
    assert httpx.get(hazmon.url + "/api/v1/alarms/stream").status_code == 401
    r = httpx.get(hazmon.url + "/api/v1/alarms/stream", params={"state": "nope"},
                  headers={"Authorization": f"Bearer {hazmon.token}"})
    assert r.status_code == 422
