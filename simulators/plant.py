"""``hazmon simulate``: set the demo plant up through the API, then stream it over MQTT.

Only the I/O lives here (HTTP setup, one paho client per gateway, the pacing loop); what the
plant is and how it behaves is ``simulators.scenario``, pure and tested without a broker.

When the API offers gateway registration, every simulated gateway is registered (or, if it
already is, its credentials are rotated: passwords are shown only once) and connects with its
own username and password, so the demo works whatever ``HAZMON_MQTT_AUTH`` is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.errors import BrokerUnavailable, ConfigError, HazmonError, ServiceError
from simulators.scenario import (
    DEMO_PLANT,
    EnterpriseSpec,
    Plant,
    point_table_csv,
    readings_message,
    readings_topic,
    status_topic,
)

SUMMARY_EVERY_S = 10.0
MAX_QUEUED = 600  # messages a gateway keeps while the broker is away (store and forward)


def _say(message: str) -> None:
    print(f"simulate: {message}", flush=True)


# --- where the server, its broker and the token are --------------------------------------------


def data_dir(env: Mapping[str, str]) -> Path:
    """``HAZMON_DATA_DIR``, else ``./.hazmon``."""
    return Path(env.get("HAZMON_DATA_DIR") or ".hazmon")


def runtime_info(env: Mapping[str, str]) -> dict[str, Any]:
    """What a running ``hazmon serve`` wrote to ``{data_dir}/runtime.json``, else ``{}``."""
    try:
        info = json.loads((data_dir(env) / "runtime.json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _connectable(host: str) -> str:
    """A listen address such as 0.0.0.0 is not one to connect to."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def default_api_url(env: Mapping[str, str]) -> str:
    """``api_url`` of runtime.json, else ``http://{HAZMON_HTTP_HOST}:{HAZMON_HTTP_PORT}``."""
    url = runtime_info(env).get("api_url")
    if isinstance(url, str) and url:
        scheme, _, rest = url.partition("://")
        host, _, port = rest.rpartition(":")
        return f"{scheme}://{_connectable(host)}:{port}" if host and port.isdigit() else url
    host = _connectable(env.get("HAZMON_HTTP_HOST", "127.0.0.1"))
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{env.get('HAZMON_HTTP_PORT') or 8000}"


def default_token(env: Mapping[str, str]) -> str | None:
    """``HAZMON_ADMIN_TOKEN``, else the token ``hazmon serve`` keeps in the data dir."""
    if env.get("HAZMON_ADMIN_TOKEN"):
        return env["HAZMON_ADMIN_TOKEN"]
    try:
        return (data_dir(env) / "admin_token").read_text().strip() or None
    except OSError:
        return None


def default_mqtt_url(env: Mapping[str, str]) -> str:
    """``HAZMON_MQTT_URL``, else ``mqtt_url`` of runtime.json, else ``mqtt://127.0.0.1:1883``."""
    url = env.get("HAZMON_MQTT_URL") or runtime_info(env).get("mqtt_url")
    return url if isinstance(url, str) and url else "mqtt://127.0.0.1:1883"


@dataclass(frozen=True)
class BrokerTarget:
    """Where and how to connect to the broker."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerTarget:
        """Parse ``mqtt://[user:password@]host:port`` (``mqtts://`` for TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
            raise ConfigError(f"not an MQTT URL (mqtt://[user:password@]host:port): {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ConfigError(f"bad port in MQTT URL {url!r}") from exc
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, user, password, tls)


# --- options -----------------------------------------------------------------------------------


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``hazmon simulate``; unset ones are resolved from the environment at run."""
    a = parser.add_argument
    a("--api", metavar="URL", help="hazmon API (default: api_url in {data dir}/runtime.json, "
      "else http://$HAZMON_HTTP_HOST:$HAZMON_HTTP_PORT)")
    a("--token", help="admin bearer token "
      "(default: $HAZMON_ADMIN_TOKEN, else {data dir}/admin_token)")
    a("--mqtt", metavar="URL", help="broker, mqtt://[user:password@]host:port "
      "(default: $HAZMON_MQTT_URL, else mqtt_url in {data dir}/runtime.json)")
    a("--interval", type=_positive, default=1.0, metavar="S",
      help="seconds between readings messages of each gateway (default 1)")
    a("--duration", type=_non_negative, default=0.0, metavar="S",
      help="stop after this many seconds (default 0: run until interrupted)")
    a("--seed", type=int, default=None, help="random seed for a repeatable plant")
    a("--no-setup", action="store_true",
      help="do not create enterprises, hazard sources and point tables through the API")
    a("--excursion-every", type=_non_negative, default=180.0, metavar="S",
      help="mean seconds between excursions after the first, which starts within 8 s "
      "(default 180; 0: no excursions)")
    a("--wait", type=_non_negative, default=60.0, metavar="S",
      help="how long to wait for the API and the broker to come up (default 60)")
    a("--ca", metavar="FILE", help="CA certificate to trust for mqtts:// "
      "(default: {data dir}/broker/ca.crt when it exists, else the system's)")


# --- setup through the API ---------------------------------------------------------------------


def _detail(response: httpx.Response) -> str:
    try:
        return json.dumps(response.json().get("detail"), ensure_ascii=False)[:2000]
    except (ValueError, AttributeError):
        return response.text[:500]


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def _check(response: httpx.Response, what: str, ok: tuple[int, ...]) -> bool:
    """True when created/updated, False on 409 (already there); raise on anything else."""
    if response.status_code in ok:
        return True
    if response.status_code == 409:
        return False
    if response.status_code == 401:
        raise ConfigError("the API refused the token (401): check --token / HAZMON_ADMIN_TOKEN")
    if response.status_code == 403:
        raise ConfigError(f"the token may not {what} (403): an admin token is needed")
    raise ServiceError(f"{what}: HTTP {response.status_code} {_detail(response)}")


def wait_for_api(client: httpx.Client, wait_s: float) -> None:
    """Wait until the server answers ``/readyz`` (or ``/healthz`` if it has no readyz)."""
    deadline, last = time.monotonic() + wait_s, "no answer"
    while True:
        try:
            ready = client.get("/readyz")
            if ready.status_code == 200 or (
                ready.status_code == 404 and client.get("/healthz").status_code == 200
            ):
                return
            last = f"/readyz answered {ready.status_code} {ready.text[:200]}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise ServiceError(f"the hazmon API at {client.base_url} is not ready after "
                               f"{wait_s:.0f} s ({last}); is `hazmon serve` running?")
        time.sleep(1.0)


def setup_enterprise(client: httpx.Client, e: EnterpriseSpec, stale_s: float) -> None:
    """Create the enterprise and its hazard sources if missing, and upload its point table."""
    created = _check(client.post("/api/v1/enterprises", json=e.api_body()),
                     f"create enterprise {e.code}", (200, 201))
    _say(f"enterprise {e.code} {e.name}: {'created' if created else 'already there'}")
    for hs in e.hazard_sources:
        r = client.post(f"/api/v1/enterprises/{e.code}/hazard-sources", json=hs.api_body())
        if _check(r, f"create hazard source {e.code}/{hs.code}", (200, 201)):
            body = r.json()
            _say(f"  hazard source {hs.code} {hs.name}: S={_num(body.get('s'))} "
                 f"R={_num(body.get('r'))} level {body.get('level')}")
        else:
            _say(f"  hazard source {hs.code} {hs.name}: already there")
    r = client.put(f"/api/v1/enterprises/{e.code}/points",
                   content=point_table_csv(e, stale_s).encode(),
                   headers={"Content-Type": "text/csv; charset=utf-8"})
    if r.status_code == 422:
        raise ServiceError(f"point table of {e.code} rejected: {_detail(r)}")
    _check(r, f"upload the point table of {e.code}", (200, 201))
    counts = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    _say(f"  point table: {len(e.points)} points "
         f"(created {counts.get('created')}, updated {counts.get('updated')})")


def api_client(api_url: str, token: str | None) -> httpx.Client:
    """An HTTP client for the API with the admin token; fail early without a token."""
    if not token:
        raise ConfigError("no admin token: pass --token, set HAZMON_ADMIN_TOKEN, or start "
                          "`hazmon serve` first (it keeps one in the data dir)")
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=api_url, headers=headers, timeout=15.0)


def setup_plant(client: httpx.Client, layout: tuple[EnterpriseSpec, ...], stale_s: float,
                wait_s: float) -> None:
    """Make the server know every enterprise, hazard source and point of ``layout``."""
    wait_for_api(client, wait_s)
    for e in layout:
        try:
            setup_enterprise(client, e, stale_s)
        except httpx.HTTPError as exc:
            raise ServiceError(f"setting up {e.code} at {client.base_url}: {exc}") from exc


GATEWAYS_PATH = "/api/v1/enterprises/{enterprise}/gateways"
Credentials = tuple[str, str]  # (username, password)


def gateways_offered(client: httpx.Client) -> bool:
    """Whether the API registers gateways (its OpenAPI spec has the gateways endpoint)."""
    try:
        r = client.get("/openapi.json")
        return r.status_code == 200 and GATEWAYS_PATH in r.json().get("paths", {})
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def register_gateways(client: httpx.Client,
                      gateways: list[tuple[str, str]]) -> dict[tuple[str, str], Credentials]:
    """Register each gateway, or rotate its credentials when it already is; their MQTT
    credentials by gateway ({} when the API does not offer gateway registration)."""
    if not gateways_offered(client):
        return {}
    out: dict[tuple[str, str], Credentials] = {}
    for enterprise, gateway in gateways:
        r = client.post(f"/api/v1/enterprises/{enterprise}/gateways", json={"code": gateway})
        if r.status_code == 409:
            r = client.post(f"/api/v1/enterprises/{enterprise}/gateways/{gateway}/credentials")
            what = "credentials rotated"
        else:
            what = "registered"
        if not _check(r, f"register gateway {enterprise}/{gateway}", (200, 201)):
            raise ServiceError(f"register gateway {enterprise}/{gateway}: HTTP 409 {_detail(r)}")
        body = r.json()
        out[(enterprise, gateway)] = (str(body["username"]), str(body["password"]))
        _say(f"gateway {enterprise}/{gateway}: {what}, MQTT user {body['username']}")
    return out


# --- MQTT: one client per gateway --------------------------------------------------------------


class GatewayLink:
    """One gateway's MQTT connection: ``offline`` as its will, ``online`` on every connect."""

    def __init__(self, enterprise: str, gateway: str, target: BrokerTarget,
                 credentials: Credentials | None = None, ca_file: str | None = None) -> None:
        self.topic = readings_topic(enterprise, gateway)
        self.status = status_topic(enterprise, gateway)
        self.name = f"{enterprise}/{gateway}"
        self.connected = threading.Event()
        self.ever_connected = self.stopping = False
        client_id = f"hazmon-sim-{enterprise}-{gateway}-{os.getpid()}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        elif target.username is not None:
            self.client.username_pw_set(target.username, target.password)
        if target.tls:
            self.client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
        self.client.will_set(self.status, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)  # paho backs off, doubling
        self.client.max_queued_messages_set(MAX_QUEUED)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.target = target

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            _say(f"{self.name}: broker refused the connection: {reason}")
            return
        client.publish(self.status, "online", qos=1, retain=True)
        if self.ever_connected:
            _say(f"{self.name}: reconnected")
        self.ever_connected = True
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self.connected.is_set() and not self.stopping:
            _say(f"{self.name}: lost the broker ({reason}); reconnecting with backoff")
        self.connected.clear()

    def start(self) -> None:
        """Connect in the background; paho keeps retrying until ``stop``."""
        self.client.connect_async(self.target.host, self.target.port, keepalive=30)
        self.client.loop_start()

    def publish(self, payload: bytes) -> bool:
        """Hand one readings message to paho (queued while disconnected); False if dropped."""
        info = self.client.publish(self.topic, payload, qos=1)
        return info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)

    def stop(self) -> None:
        """Say ``offline`` (a clean disconnect does not fire the will), then disconnect."""
        self.stopping = True
        if self.connected.is_set():
            info = self.client.publish(self.status, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except RuntimeError:
                pass
        self.client.disconnect()
        self.client.loop_stop()


def connect_all(links: list[GatewayLink], wait_s: float, stop: threading.Event) -> None:
    """Start every link and wait until all are connected, or fail after ``wait_s``."""
    for link in links:
        link.start()
    deadline = time.monotonic() + wait_s
    while not all(link.connected.is_set() for link in links):
        if time.monotonic() >= deadline:
            t = links[0].target
            raise BrokerUnavailable(f"MQTT broker at {t.host}:{t.port} unreachable after "
                                    f"{wait_s:.0f} s (set --mqtt or HAZMON_MQTT_URL)")
        if stop.wait(0.1):
            return


# --- the loop ----------------------------------------------------------------------------------


@dataclass
class Counters:
    """What was sent, for the summary lines."""

    messages: int = 0
    readings: int = 0
    dropped: int = 0

    def line(self, elapsed: float, links: list[GatewayLink], plant: Plant) -> str:
        """One summary line."""
        online = sum(link.connected.is_set() for link in links)
        active = "; ".join(x.describe() for x in plant.active) or "none"
        return (f"{elapsed:.0f} s: {self.messages} messages, {self.readings} readings sent, "
                f"{self.dropped} dropped; gateways online {online}/{len(links)}; "
                f"excursions: {active}")


def stream(plant: Plant, rng: np.random.Generator, links: dict[tuple[str, str], GatewayLink],
           counters: Counters, interval: float, duration: float,
           stop: threading.Event) -> None:
    """Step the plant and publish every gateway's readings each ``interval`` until stopped.

    The model advances by the wall time actually elapsed, so its dynamics match the readings'
    timestamps even when a step runs late.
    """
    start = next_tick = last_summary = time.monotonic()
    previous: float | None = None
    while not stop.is_set():
        now = time.monotonic()
        out = plant.step(interval if previous is None else max(now - previous, 1e-3), rng)
        previous = now
        ts_ms = time.time_ns() // 1_000_000
        for key, readings in out.items():
            if links[key].publish(readings_message(ts_ms, readings)):
                counters.messages += 1
                counters.readings += len(readings)
            else:
                counters.dropped += 1
        for event in plant.drain_events():
            _say(event)
        if now - last_summary >= SUMMARY_EVERY_S:
            _say(counters.line(now - start, list(links.values()), plant))
            last_summary = now
        next_tick = max(next_tick + interval, time.monotonic())  # never catch up in a burst
        if duration and next_tick - start >= duration - 1e-6:
            stop.wait(start + duration - time.monotonic())
            break
        stop.wait(next_tick - time.monotonic())


def _on_sigterm(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM stop the loop cleanly (main thread only); return the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)

    return undo


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Set up (unless --no-setup) and stream until ``stop``, Ctrl-C or --duration; exit code."""
    stop = stop or threading.Event()
    env = os.environ
    undo = _on_sigterm(stop)
    try:
        return _run(args, stop, env)
    except HazmonError as exc:
        print(f"hazmon simulate: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        undo()


def default_ca_file(env: Mapping[str, str]) -> str | None:
    """``{data dir}/broker/ca.crt`` (the embedded broker's local CA) when it exists."""
    path = data_dir(env) / "broker" / "ca.crt"
    return str(path) if path.is_file() else None


def _run(args: argparse.Namespace, stop: threading.Event, env: Mapping[str, str]) -> int:
    target = BrokerTarget.parse(args.mqtt or default_mqtt_url(env))
    credentials: dict[tuple[str, str], Credentials] = {}
    if not args.no_setup:
        api_url = (args.api or default_api_url(env)).rstrip("/")
        stale_s = float(max(30, math.ceil(5 * args.interval)))
        with api_client(api_url, args.token or default_token(env)) as client:
            setup_plant(client, DEMO_PLANT, stale_s, args.wait)
            try:
                credentials = register_gateways(
                    client, [(e.code, g.code) for e in DEMO_PLANT for g in e.gateways])
            except httpx.HTTPError as exc:
                raise ServiceError(f"registering gateways at {client.base_url}: {exc}") from exc
    rng = np.random.default_rng(args.seed)
    local = time.localtime()
    plant = Plant(DEMO_PLANT, rng, start_hour=local.tm_hour + local.tm_min / 60,
                  excursion_every_s=args.excursion_every)
    ca_file = getattr(args, "ca", None) or default_ca_file(env)
    links = {key: GatewayLink(*key, target, credentials.get(key), ca_file)
             for key in plant.gateways}
    try:
        connect_all(list(links.values()), args.wait, stop)
        _say(f"streaming {len(links)} gateways to {target.host}:{target.port} "
             f"every {args.interval:g} s" + (f" for {args.duration:g} s" if args.duration else ""))
        started, counters = time.monotonic(), Counters()
        try:
            stream(plant, rng, links, counters, args.interval, args.duration, stop)
        finally:
            elapsed = time.monotonic() - started
            _say("stopped; " + counters.line(elapsed, list(links.values()), plant))
    finally:
        for link in links.values():
            link.stop()
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m simulators.plant", description=__doc__)
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
