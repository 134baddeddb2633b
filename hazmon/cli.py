"""The ``hazmon`` command: serve, simulate, demo, migrate."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Sequence

from hazmon.errors import ConfigError
from hazmon.settings import Settings, load_settings
from hazmon.shard import parse_shard

log = logging.getLogger("hazmon")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


def serve(settings: Settings, *, simulate: bool = False, api_only: bool = False,
          shard: tuple[int, int] | None = None) -> int:
    """Run the API, the ingestor and the alarm engine in this process until interrupted.

    ``api_only``: the API without ingest (ingest runs in shard processes).
    ``shard``: ingest and the engine for one shard's enterprises, with only health and metrics
    over HTTP (``hazmon ingest --shard K/N``).
    """
    import uvicorn

    from api.app import create_app
    from api.deps import Services
    from api.security import RateLimiter
    from hazmon.app import (admin_token, new_metrics_registry, pool_for_api, start_broker,
                            start_storage, write_runtime)
    from contextlib import ExitStack

    if (api_only or shard) and not settings.database_url:
        raise ConfigError("HAZMON_DATABASE_URL must be set: shards and the API-only process share "
                          "one database (the embedded one is for a single 'hazmon serve')")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM unwinds the stack (uvicorn re-raises it after its graceful shutdown), so the
    # embedded services stop cleanly and the engine saves its checkpoint.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        db_url, storage = start_storage(settings, stack)
        registry = new_metrics_registry()
        ingest, mqtt_url, broker = None, settings.mqtt_url or "(none)", None
        if not api_only:
            if shard and not settings.mqtt_url:
                raise ConfigError("HAZMON_MQTT_URL must be set for a shard")
            mqtt_url, broker_kind, broker = start_broker(settings, stack, db_url)
            ingest = _start_ingest(settings, stack, db_url,
                                   broker.ingest_url if broker else mqtt_url, broker_kind,
                                   storage, registry, shard,
                                   broker.ingest_client_id if broker else None)
        token, new = admin_token(settings)
        services = Services(pool=pool_for_api(db_url, stack), admin_token=token,
                            metrics_registry=registry, storage=storage, ingest=ingest,
                            db_url=db_url, shelve_max_s=settings.shelve_max_s(),
                            rate_limiter=RateLimiter(settings.rate_limit_per_s,
                                                     settings.rate_limit_burst))
        from hazmon.mqtt_auth import MqttIdentity

        services.extra["mqtt"] = MqttIdentity.from_settings(settings, broker)
        if shard is None:
            _start_background_services(stack, db_url, registry, settings)
        app = create_app(services, health_only=shard is not None)
        api_url = f"http://{settings.http_host}:{settings.http_port}"
        if shard is None:
            write_runtime(settings, api_url, mqtt_url)
            _announce(api_url, mqtt_url, storage.timescale, token if new else None, settings)
        else:
            print(f"hazmon ingest shard {shard[0]}/{shard[1]}: metrics at {api_url}/metrics",
                  flush=True)
        server = uvicorn.Server(uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                                               log_level="warning", access_log=False,
                                               timeout_graceful_shutdown=5))
        if simulate:
            _start_simulator(stack, server)
        server.run()
    return 0


def _start_background_services(stack, db_url: str, registry, settings) -> None:  # type: ignore[no-untyped-def]
    """Risk warnings, incident correlation, deadlines and notifications (one active instance
    per database each, the others stand by), in the API-serving processes."""
    from alerting.notify.service import NotifierService
    from alerting.response_service import ResponseService

    if settings.response:
        response = ResponseService(db_url)
        response.start()
        stack.callback(response.stop)
    if settings.notifier:
        notifier = NotifierService(db_url, registry=registry)
        notifier.start()
        stack.callback(notifier.stop)


def _start_ingest(settings, stack, db_url, mqtt_url, broker_kind, storage, registry, shard,  # type: ignore[no-untyped-def]
                  broker_client_id=None):
    """Start the subscriber and the ingest worker; they stop with the stack."""
    from ingest.metrics import IngestMetrics
    from ingest.mqtt import READINGS_TOPIC, STATUS_TOPIC, BrokerAddress, Subscriber
    from ingest.service import IngestService

    client_id = settings.mqtt_client_id
    if broker_client_id and client_id == "hazmon-ingest":
        client_id = broker_client_id  # unguessable: an anonymous client cannot take the session over
    if shard is not None and client_id == "hazmon-ingest":
        client_id = f"hazmon-ingest-{shard[0]}-of-{shard[1]}"
    metrics = IngestMetrics(registry)
    subscriber = Subscriber(BrokerAddress.parse(mqtt_url), client_id,
                            protocol=3 if broker_kind == "amqtt" else settings.mqtt_protocol,
                            receive_maximum=settings.ingest_queue_max,
                            topics=() if shard is not None else (READINGS_TOPIC, STATUS_TOPIC),
                            on_state=lambda up: metrics.broker_connected.set(1 if up else 0))
    ingest = IngestService(settings, db_url, subscriber, metrics, storage.timescale, shard)
    ingest.start()
    stack.callback(ingest.stop)
    return ingest


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _announce(api_url: str, mqtt_url: str, timescale: bool, new_token: str | None,
              settings: Settings) -> None:
    print(f"hazmon console: {api_url}/   (API docs: {api_url}/docs)", flush=True)
    from hazmon.app import redact_url

    print(f"MQTT broker:    {redact_url(mqtt_url)}   "
          f"storage: {'TimescaleDB' if timescale else 'PostgreSQL'}",
          flush=True)
    if new_token:
        print(f"admin token (shown once, kept in {settings.data_dir / 'admin_token'}): {new_token}",
              flush=True)


def _start_simulator(stack, server) -> None:  # type: ignore[no-untyped-def]
    """Run the plant simulator in a thread once the API is up."""
    from simulators import plant

    stop = threading.Event()
    parser = argparse.ArgumentParser()
    plant.add_arguments(parser)
    args = parser.parse_args([])

    def body() -> None:
        while not server.started and not stop.is_set():
            stop.wait(0.1)
        if not stop.is_set():
            plant.run(args, stop)

    thread = threading.Thread(target=body, name="hazmon-simulator", daemon=True)
    thread.start()
    stack.callback(thread.join, 10)
    stack.callback(stop.set)


def _admin_commands(sub) -> None:  # type: ignore[no-untyped-def]
    user = sub.add_parser("user", help="manage users (roles and scopes)")
    user_sub = user.add_subparsers(dest="action", required=True)
    create = user_sub.add_parser("create", help="create a user")
    create.add_argument("name")
    create.add_argument("--role", required=True,
                        choices=["admin", "duty_officer", "enterprise", "dispatcher", "viewer"])
    create.add_argument("--enterprise", action="append", default=[], help="scope (repeatable)")
    create.add_argument("--region", action="append", default=[], help="scope (repeatable)")
    create.add_argument("--display-name")
    user_sub.add_parser("list", help="list users")
    token = sub.add_parser("token", help="issue, list and revoke API tokens")
    token_sub = token.add_subparsers(dest="action", required=True)
    issue = token_sub.add_parser("issue", help="issue a token for a user (printed once)")
    issue.add_argument("user")
    issue.add_argument("--name")
    token_sub.add_parser("list", help="list tokens (never their values)")
    revoke = token_sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int)


def _run_admin(args: argparse.Namespace, settings: Settings) -> int:
    """User and token management against the configured (or running embedded) database."""
    import json
    from contextlib import ExitStack

    from hazmon import accounts
    from hazmon.app import database_for_cli
    from hazmon.db import connect

    with ExitStack() as stack:
        with connect(database_for_cli(settings, stack)) as conn:
            if args.command == "user" and args.action == "create":
                out = accounts.create_user(conn, args.name, args.role, "cli",
                                           display_name=args.display_name,
                                           enterprises=args.enterprise, regions=args.region)
            elif args.command == "user":
                out = accounts.list_users(conn)
            elif args.action == "issue":
                out = accounts.issue_token(conn, args.user, args.name, None)
            elif args.action == "list":
                out = accounts.list_tokens(conn)
            else:
                accounts.revoke_token(conn, args.id)
                out = {"revoked": args.id}
            accounts.audit(conn, actor="cli", role="admin", action=f"{args.command} {args.action}",
                           target=getattr(args, "name", None) or getattr(args, "user", None),
                           status=0, after=_no_token(out))
            conn.commit()
    print(json.dumps(out, ensure_ascii=False, indent=2, default=str))
    return 0


def _no_token(value: object) -> object:
    return {k: v for k, v in value.items() if k != "token"} if isinstance(value, dict) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="hazmon", description=__doc__)
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="API + ingest + alarm engine (embedded DB/broker when unset)")
    serve_p.add_argument("--api-only", action="store_true",
                         help="only the API (ingest runs in 'hazmon ingest --shard' processes)")
    ingest_p = sub.add_parser("ingest", help="ingest + alarm engine for one shard of the enterprises")
    ingest_p.add_argument("--shard", default="0/1", help="K/N: enterprises whose code hashes to K")
    sub.add_parser("demo", help="serve, with the simulated plant streaming")
    sub.add_parser("migrate", help="apply database migrations and exit")
    _admin_commands(sub)
    sim = sub.add_parser("simulate", help="publish a simulated plant over MQTT")
    from simulators import plant

    plant.add_arguments(sim)
    try:
        from simulators import load as load_gen
    except ImportError:  # pragma: no cover - the load generator is optional
        load_gen = None  # type: ignore[assignment]
    if load_gen is not None:
        load = sub.add_parser("load", help="load generator: N enterprises x M points at a rate")
        load_gen.add_arguments(load)
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    if args.command == "simulate":
        return plant.run(args)
    if args.command == "load":
        return load_gen.run(args)
    settings = load_settings()
    if args.command in ("user", "token"):
        from hazmon.errors import HazmonError

        try:
            return _run_admin(args, settings)
        except HazmonError as exc:
            print(f"hazmon: {exc}", file=sys.stderr)
            return 2
    if args.command == "migrate":
        from contextlib import ExitStack

        from hazmon.app import start_storage

        with ExitStack() as stack:
            _, info = start_storage(settings, stack)
            print(f"migrated; timescaledb={'yes' if info.timescale else 'no'}")
        return 0
    try:
        if args.command == "ingest":
            return serve(settings, shard=parse_shard(args.shard))
        return serve(settings, simulate=args.command == "demo",
                     api_only=getattr(args, "api_only", False))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        print(f"hazmon: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
