#!/usr/bin/env bash
# Set up and run the whole test suite against real PostgreSQL and MQTT brokers it starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
HAZMON_SETUP_BROWSER=1 bash scripts/setup.sh
mkdir -p test-artifacts
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
