"""Static checks of deploy/ that need no Docker engine: `python deploy/check.py`.

- every YAML file parses; compose.yml's mounted files exist and each secret it requires
  (`${VAR:?...}`) is listed in .env.example, empty;
- the Grafana dashboard is valid JSON with unique panel ids, panels that do not overlap, the
  provisioned datasource uid, and only hazmon metrics that ingest/metrics.py defines;
- prometheus.yml and prometheus-alerts.yml pass `promtool check` when promtool is on PATH, and
  so does every dashboard query (parsed as a recording rule);
- compose.yml validates against the Compose Specification's JSON schema when
  COMPOSE_SPEC_SCHEMA names a copy of it (schema/compose-spec.json of compose-spec/compose-spec)
  and the jsonschema package is importable.

Needs PyYAML (any Python 3.11+ with it; not a dependency of hazmon). Exit status 1 on any error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
errors: list[str] = []


def error(msg: str) -> None:
    errors.append(msg)
    print(f"ERROR {msg}")


def ok(msg: str) -> None:
    print(f"ok    {msg}")


def load_yaml(path: Path) -> object:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        error(f"{path.relative_to(REPO)}: {exc}")
        return None
    ok(f"{path.relative_to(REPO)} parses")
    return data


def check_compose(compose: dict, text: str) -> None:
    """Mounted files exist; required secrets are in .env.example (empty)."""
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                if not (HERE / src).exists():
                    error(f"compose.yml: {name} mounts {src}, which does not exist")
        build = svc.get("build")
        if build and not (HERE / build["context"] / build["dockerfile"]).exists():
            error(f"compose.yml: {name} builds from a missing Dockerfile")
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    optional = set(re.findall(r"\$\{([A-Z0-9_]+):-", text))
    example = {}
    for line in (HERE / ".env.example").read_text(encoding="utf-8").splitlines():
        m = re.match(r"#?\s*([A-Z0-9_]+)=(.*)", line)
        if m:
            example[m.group(1)] = m.group(2).strip()
    for var in sorted(required):
        if var not in example:
            error(f".env.example lacks the required secret {var}")
        elif example[var]:
            error(f".env.example gives {var} a value: secrets must have no default")
    for var in sorted(optional - set(example)):
        error(f".env.example does not mention {var} (used in compose.yml)")
    ok(f"compose.yml: {len(compose['services'])} services, {len(required)} required secrets, "
       f"{len(optional)} optional settings, all in .env.example")


def check_compose_schema(compose: dict) -> None:
    schema_path = os.environ.get("COMPOSE_SPEC_SCHEMA")
    if not schema_path:
        print("skip  compose schema: set COMPOSE_SPEC_SCHEMA to compose-spec.json to check it")
        return
    import jsonschema

    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    found = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(compose))
    for e in found:
        error(f"compose.yml {'/'.join(map(str, e.path))}: {e.message[:300]}")
    if not found:
        ok("compose.yml validates against the Compose Specification schema")


def defined_metrics() -> set[str]:
    """Metric names defined in ingest/metrics.py, with the series a histogram/counter exposes."""
    src = (REPO / "ingest" / "metrics.py").read_text(encoding="utf-8")
    names: set[str] = set()
    for kind, name in re.findall(r"(Counter|Gauge|Histogram)\(\s*\"(hazmon_[a-z0-9_]+)\"", src):
        base = name[:-6] if kind == "Counter" and name.endswith("_total") else name
        names.add(name)
        if kind == "Counter":
            names.update({base + "_total", base + "_created"})
        if kind == "Histogram":
            names.update({name + s for s in ("_bucket", "_sum", "_count", "_created")})
    return names


def check_dashboard(path: Path, ds_uid: str) -> None:
    try:
        dash = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        error(f"{path.name}: not JSON: {exc}")
        return
    panels = list(dash["panels"])
    for p in dash["panels"]:
        panels.extend(p.get("panels", []))
    ids = [p["id"] for p in panels]
    if len(ids) != len(set(ids)):
        error(f"{path.name}: duplicate panel ids {sorted(i for i in ids if ids.count(i) > 1)}")
    cells: dict[tuple[int, int], int] = {}
    for p in panels:
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            error(f"{path.name}: panel {p['id']} is wider than the grid")
        for yy in range(g["y"], g["y"] + g["h"]):
            for xx in range(g["x"], g["x"] + g["w"]):
                if (xx, yy) in cells:
                    error(f"{path.name}: panels {cells[(xx, yy)]} and {p['id']} overlap")
                cells[(xx, yy)] = p["id"]
    known = defined_metrics()
    used: set[str] = set()
    for p in panels:
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != ds_uid:
            error(f"{path.name}: panel {p['id']} does not use datasource uid {ds_uid}")
        for t in p.get("targets", []):
            used.update(re.findall(r"\b(hazmon_[a-z0-9_]+)", t["expr"]))
    unknown = sorted(used - known)
    if unknown:
        error(f"{path.name}: metrics not defined in ingest/metrics.py: {unknown}")
    unused = sorted(n for n in known if not n.endswith(("_created", "_sum", "_count")) and
                    not any(u.startswith(n.removesuffix("_bucket")) for u in used))
    ok(f"{path.name}: {len(panels)} panels, unique ids, no overlap, datasource {ds_uid}, "
       f"{len(used)} hazmon series all defined" + (f" (not shown: {unused})" if unused else ""))


def check_promtool() -> None:
    promtool = shutil.which("promtool")
    if not promtool:
        print("skip  promtool not on PATH (Debian: apt-get install prometheus)")
        return
    cfg = (HERE / "prometheus.yml").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmpdir:
        # compose mounts the rules at /etc/prometheus/alerts.yml; check the local copy.
        tmp = Path(tmpdir) / "prometheus.yml"
        tmp.write_text(cfg.replace("/etc/prometheus/alerts.yml",
                                   str(HERE / "prometheus-alerts.yml")), encoding="utf-8")
        for args in (["check", "config", str(tmp)],
                     ["check", "rules", str(HERE / "prometheus-alerts.yml")]):
            r = subprocess.run([promtool, *args], capture_output=True, text=True)
            if r.returncode:
                error(f"promtool {args[1]}: {r.stdout}{r.stderr}")
            else:
                found = re.findall(r"SUCCESS: (\d+ rules found)", r.stdout + r.stderr)
                ok(f"promtool check {args[1]}" + (f" ({found[0]})" if found else ""))
        check_dashboard_promql(promtool, Path(tmpdir))


def check_dashboard_promql(promtool: str, tmpdir: Path) -> None:
    """Parse every dashboard query with promtool (as recording rules, Grafana variables filled)."""
    rules = []
    for path in sorted((HERE / "grafana/dashboards").glob("*.json")):
        dash = json.loads(path.read_text(encoding="utf-8"))
        for p in dash["panels"]:
            for t in p.get("targets", []):
                expr = t["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
                rules.append({"record": f"dashboard:panel{p['id']}:{t['refId']}", "expr": expr})
    out = tmpdir / "dashboard-rules.yml"
    out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}),
                   encoding="utf-8")
    r = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True)
    if r.returncode:
        error(f"dashboard PromQL: {r.stdout}{r.stderr}")
    else:
        ok(f"dashboard PromQL: {len(rules)} queries parse (promtool)")


def main() -> int:
    compose_text = (HERE / "compose.yml").read_text(encoding="utf-8")
    compose = load_yaml(HERE / "compose.yml")
    if isinstance(compose, dict):
        check_compose(compose, compose_text)
        check_compose_schema(compose)
    datasources = HERE / "grafana/provisioning/datasources/prometheus.yml"
    for path in [HERE / "prometheus.yml", HERE / "prometheus-alerts.yml",
                 *sorted((HERE / "grafana").rglob("*.yml"))]:
        if path != datasources:
            load_yaml(path)
    ds = load_yaml(datasources)
    ds_uid = ds["datasources"][0]["uid"] if isinstance(ds, dict) else ""
    for path in sorted((HERE / "grafana/dashboards").glob("*.json")):
        check_dashboard(path, ds_uid)
    check_promtool()
    print(f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
