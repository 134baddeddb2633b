"""The ``hazmon`` command: serve, simulate, demo, migrate."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Sequence

from hazmon.settings import Settings, load_settings

log = logging.getLogger("hazmon")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


def serve(settings: Settings, *, simulate: bool = False) -> int:
    """Run the API, the ingestor and the alarm engine in this process until interrupted."""
    import uvicorn

    from api.app import create_app
    from api.deps import Services
    from hazmon.app import (admin_token, new_metrics_registry, pool_for_api, start_broker,
                            start_storage, write_runtime)
    from ingest.metrics import IngestMetrics
    from ingest.mqtt import BrokerAddress, Subscriber
    from ingest.service import IngestService
    from contextlib import ExitStack

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM unwinds the stack (uvicorn re-raises it after its graceful shutdown), so the
    # embedded services stop cleanly and the engine saves its checkpoint.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        db_url, storage = start_storage(settings, stack)
        mqtt_url, broker_kind = start_broker(settings, stack)
        token, new = admin_token(settings)
        registry = new_metrics_registry()
        subscriber = Subscriber(BrokerAddress.parse(mqtt_url), settings.mqtt_client_id,
                                protocol=3 if broker_kind == "amqtt" else settings.mqtt_protocol,
                                receive_maximum=settings.ingest_queue_max)
        ingest = IngestService(settings, db_url, subscriber, IngestMetrics(registry), storage.timescale)
        ingest.start()
        stack.callback(ingest.stop)
        services = Services(pool=pool_for_api(db_url, stack), admin_token=token,
                            metrics_registry=registry, storage=storage, ingest=ingest,
                            db_url=db_url, shelve_max_s=settings.shelve_max_s())
        app = create_app(services)
        api_url = f"http://{settings.http_host}:{settings.http_port}"
        write_runtime(settings, api_url, mqtt_url)
        _announce(api_url, mqtt_url, storage.timescale, token if new else None, settings)
        server = uvicorn.Server(uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                                               log_level="warning", access_log=False,
                                               timeout_graceful_shutdown=5))
        if simulate:
            _start_simulator(stack, server)
        server.run()
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _announce(api_url: str, mqtt_url: str, timescale: bool, new_token: str | None,
              settings: Settings) -> None:
    print(f"hazmon console: {api_url}/   (API docs: {api_url}/docs)", flush=True)
    print(f"MQTT broker:    {mqtt_url}   storage: {'TimescaleDB' if timescale else 'PostgreSQL'}",
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="hazmon", description=__doc__)
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="API + ingest + alarm engine (embedded DB/broker when unset)")
    sub.add_parser("demo", help="serve, with the simulated plant streaming")
    sub.add_parser("migrate", help="apply database migrations and exit")
    sim = sub.add_parser("simulate", help="publish a simulated plant over MQTT")
    from simulators import plant

    plant.add_arguments(sim)
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    if args.command == "simulate":
        return plant.run(args)
    settings = load_settings()
    if args.command == "migrate":
        from contextlib import ExitStack

        from hazmon.app import start_storage

        with ExitStack() as stack:
            _, info = start_storage(settings, stack)
            print(f"migrated; timescaledb={'yes' if info.timescale else 'no'}")
        return 0
    try:
        return serve(settings, simulate=args.command == "demo")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
