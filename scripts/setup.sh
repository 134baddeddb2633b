#!/usr/bin/env bash
# Prepare a machine to run hazmon: a virtualenv with hazmon and its test tools, and (best effort)
# Debian's mosquitto broker. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || { echo "hazmon needs Python 3.11 or newer" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.hazmon-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

# Debian packages, when we can install them (root with apt): mosquitto is faster and sturdier
# than the pure-Python fallback broker; chromium is only for the browser tests (HAZMON_SETUP_BROWSER=1).
want=()
command -v mosquitto >/dev/null || want+=(mosquitto)
if [ "${HAZMON_SETUP_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null; then want+=(chromium); fi
if [ ${#want[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${want[*]} (Debian packages) ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}") \
    >/tmp/hazmon-apt.log 2>&1 || echo "could not install ${want[*]} (see /tmp/hazmon-apt.log)"
  # Debian starts a system mosquitto on port 1883; hazmon runs its own, so leave that one off.
  command -v systemctl >/dev/null && systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
