#!/usr/bin/env bash
# Set up and run hazmon with its embedded PostgreSQL and broker and a simulated plant streaming.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/hazmon demo "$@"
