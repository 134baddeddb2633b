"""schemathesis over the running server's own /openapi.json: no request makes a 5xx, and every
answer has a documented status code and matches its documented schema.

Twice, with different rights: as an enterprise user (its own enterprise, refused elsewhere),
then as the bootstrap admin (everything). The enterprise user goes first because the admin run
may revoke or disable what it finds (DELETE /api/v1/tokens/{token_id} with small ids).

It runs schemathesis' own command (``st run``: its engine with every phase; its pytest plugin
does not work with pytest 9). Bounded and repeatable: deterministic generation, no example
database, the examples, coverage and fuzzing phases with a few examples per operation, one
worker, requests paced under the server's rate limit (50/s per token) so the answers are not
mostly 429. A failure shows schemathesis' report (with a curl line per case) and the server log.

The SSE stream (GET /api/v1/alarms/stream) is left out of the schema run: a 200 there is an
endless text/event-stream (keepalives every 15 s), which schemathesis would wait on until its
timeout; the OpenAPI has no schema for SSE events to conform to anyway. Its refusals (unknown
filters, bad Last-Event-ID) are fuzzed below with hypothesis, reading only the status and the
first bytes of the answer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import Gateway, Hazmon, wait_for

ST = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
if ST is None:
    pytest.skip("schemathesis is not installed (pip install -e '.[test]')", allow_module_level=True)

E = "ST-E"
STREAM = "/api/v1/alarms/stream"
SEED = 20261123
MAX_EXAMPLES = 10
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
RATE = 40.0  # requests per second, under the server's 50/s per token


class Pace:
    """At most RATE requests per second from this test process."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            delay = self.next - now
            self.next = max(now, self.next) + self.interval
        if delay > 0:
            time.sleep(delay)


PACE = Pace(RATE)


@pytest.fixture(scope="module")
def world(hazmon: Hazmon, mqtt_url: str) -> dict[str, Any]:
    """An enterprise with a hazard source, a point, readings, an alarm and a rejection, so that
    paths can name things that exist; tokens of an enterprise user of it, and of admins (one
    token per parallel run: the rate limit is per token)."""
    admin = hazmon.api()
    assert admin.post("/api/v1/enterprises", json={"code": E, "name": "schemathesis"}).status_code == 201
    assert admin.post(f"/api/v1/enterprises/{E}/hazard-sources", json={
        "code": "HS1", "name": "tank", "unit_type": "storage",
        "chemicals": [{"name": "chlorine", "quantity_t": 10}]}).status_code == 201
    r = admin.put(f"/api/v1/enterprises/{E}/points", headers={"Content-Type": "text/csv"},
                  content="tag,kind,hazard_source,hi\nP1,pressure,HS1,80\n")
    assert r.status_code == 200, r.text
    gw = Gateway(mqtt_url, E)
    gw.publish([{"tag": "P1", "value": 90, "ts": time.time_ns() // 1_000_000 - 1000}])
    gw.publish_raw(b"not json")
    gw.close()
    alarms = wait_for(lambda: admin.get("/api/v1/alarms", params={"enterprise": E}).json()["items"],
                      what="an alarm")
    tokens: dict[str, list[str]] = {"enterprise": [], "admin": [hazmon.token]}
    assert admin.post("/api/v1/users", json={"name": "st-ent", "role": "enterprise",
                                             "enterprises": [E]}).status_code == 201
    for i in range(len(PARTITIONS)):
        tokens["enterprise"].append(
            admin.post("/api/v1/users/st-ent/tokens", json={"name": f"st-{i}"}).json()["token"])
    for i in range(1, len(PARTITIONS)):
        assert admin.post("/api/v1/users", json={"name": f"st-admin-{i}", "role": "admin"}).status_code == 201
        tokens["admin"].append(
            admin.post(f"/api/v1/users/st-admin-{i}/tokens", json={}).json()["token"])
    admin.close()
    return {"tokens": tokens, "alarm_id": alarms[0]["id"]}


# Parallel runs over disjoint parts of the API, each with a token of its own, so that the whole
# module takes well under 3 minutes while each run stays under its token's rate limit.
TOP = "enterprises|alarms|rejections|reports|warnings|incidents|rescue-resources|hazard-records|notifications"
PARTITIONS = (
    r"^/api/v1/enterprises/[^/]+/hazard-sources",
    r"^/api/v1/enterprises(?!/[^/]+/hazard-sources)",
    r"^/api/v1/(alarms|rejections|reports)",
    r"^/api/v1/warnings",
    r"^/api/v1/incidents",
    r"^/api/v1/notifications",
    r"^/api/v1/(rescue-resources|hazard-records)",
    rf"^/(?!api/v1/({TOP}))",
)

# Known failures in routes of others, each reproduced by an xfail(strict) test below: left out of
# the schemathesis runs until fixed (then the xfail turns into a failure: remove both).
KNOWN_FAILURES: tuple[str, ...] = ()

# The enterprise user's run names its own enterprise's things most of the time, so it gets past
# the 404s to the logic behind them; the admin run fuzzes every path parameter.
KNOWN = """
[dictionaries.enterprise]
values = ["{E}"]
[dictionaries.code]
values = ["HS1"]
[dictionaries.tag]
values = ["P1"]
[dictionaries.alarm_id]
values = [{alarm_id}]

[parameters]
"path.enterprise" = {{ dictionary = "enterprise", probability = 0.8 }}
"path.code" = {{ dictionary = "code", probability = 0.8 }}
"path.tag" = {{ dictionary = "tag", probability = 0.8 }}
"path.alarm_id" = {{ dictionary = "alarm_id", probability = 0.8 }}
"""


def run_schemathesis(hazmon: Hazmon, tokens: list[str], tmp_path: Path, config: str = "") -> None:
    """``st run`` against the server, one process per partition; fails with schemathesis'
    reports and the server's log."""
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(config)
    runs = []
    for i, (token, paths) in enumerate(zip(tokens, PARTITIONS, strict=True)):
        cmd = [ST, "--config-file", str(config_file), "run", hazmon.url + "/openapi.json",
               "--header", f"Authorization: Bearer {token}",
               "--checks", CHECKS,
               "--include-path-regex", paths,
               "--exclude-path", STREAM,
               *[arg for path in KNOWN_FAILURES for arg in ("--exclude-path", path)],
               "--phases", "examples,coverage,fuzzing",
               "--max-examples", str(MAX_EXAMPLES),
               "--generation-deterministic",
               "--seed", str(SEED),
               "--workers", "1",
               "--rate-limit", f"{int(RATE)}/s",
               "--request-timeout", "30",
               "--no-color",
               "--report", "junit", "--report-dir", str(tmp_path / f"part-{i}")]
        out = open(tmp_path / f"part-{i}.txt", "w+")  # noqa: SIM115 - read below
        runs.append((paths, out, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                                  cwd=tmp_path, text=True)))
    started = time.monotonic()
    failed = []
    for paths, out, proc in runs:
        try:
            code = proc.wait(timeout=max(1.0, 150 - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "timeout"
        out.seek(0)
        report = out.read()
        out.close()
        if code != 0 or "Tested:" not in report:
            failed.append(f"=== {paths}: exit {code}\n{report[-15000:]}")
    assert not failed, ("\n".join(failed) + f"\n--- server log ---\n{hazmon.log()}")


def test_api_as_an_enterprise_user(hazmon: Hazmon, world: dict[str, Any], tmp_path: Path) -> None:
    run_schemathesis(hazmon, world["tokens"]["enterprise"], tmp_path,
                     KNOWN.format(E=E, alarm_id=world["alarm_id"]))


def test_api_as_admin(hazmon: Hazmon, world: dict[str, Any], tmp_path: Path) -> None:
    run_schemathesis(hazmon, world["tokens"]["admin"], tmp_path)


# ---------------------------------------------------------------- the event stream

FILTER = st.one_of(st.none(), st.text(max_size=20), st.sampled_from(
    ["active", "open", "UNACK_ACTIVE", "HI", "COMM", E, "P1", "HS1", "NOPE"]))


@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
@given(state=FILTER, enterprise=FILTER, tag=FILTER, condition=FILTER, hazard_source=FILTER,
       last_event_id=st.one_of(st.none(), st.text(alphabet="0123456789x-", max_size=25)),
       who=st.sampled_from(["admin", "enterprise"]))
def test_stream_refuses_or_streams_never_5xx(hazmon: Hazmon, world: dict[str, Any], state: Any,
                                             enterprise: Any, tag: Any, condition: Any,
                                             hazard_source: Any, last_event_id: Any,
                                             who: str) -> None:
    token = world["tokens"][who][0]
    params = {k: v for k, v in (("state", state), ("enterprise", enterprise), ("tag", tag),
                                ("condition", condition), ("hazard_source", hazard_source))
              if v is not None}
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    PACE.wait()
    with httpx.Client(base_url=hazmon.url, timeout=httpx.Timeout(10)) as client, \
            client.stream("GET", STREAM, params=params, headers=headers) as r:
        assert r.status_code < 500, (params, headers, r.status_code)
        if r.status_code == 200:
            assert r.headers["content-type"].startswith("text/event-stream")
            first = next(r.iter_lines())  # the retry: line, then events; not waited on
            assert first.startswith("retry:"), first
        else:
            r.read()
            assert r.headers["content-type"] == "application/json", r.text
            assert set(r.json()) == {"detail"} and r.status_code in (403, 404, 422), r.text


def test_incident_pdf_export_with_a_long_note(hazmon: Hazmon, world: dict[str, Any]) -> None:
    """Found by schemathesis: an incident whose note is 4,000 characters (the maximum), one word
    or many, made GET /api/v1/incidents/{id}/export?format=pdf a 500 (reportlab: 'flowable
    given negative availWidth' / LayoutError 'too large on page'); fixed in b6d1ad5."""
    with hazmon.api() as admin:
        ids = []
        for note in ("x" * 4000, ("word " * 800)[:4000]):
            r = admin.post("/api/v1/incidents", json={"enterprise": E, "title": "t", "note": note})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    for incident in ids:
        with httpx.Client(base_url=hazmon.url, timeout=60,  # a 500 closes the connection
                          headers={"Authorization": f"Bearer {hazmon.token}"}) as c:
            r = c.get(f"/api/v1/incidents/{incident}/export", params={"format": "pdf"})
            assert r.status_code == 200, r.text


def test_server_survived(hazmon: Hazmon) -> None:
    """After all of it the process still runs and is ready."""
    assert hazmon.proc is not None and hazmon.proc.poll() is None
    assert httpx.get(hazmon.url + "/readyz", timeout=10).status_code == 200
