"""End-to-end fuzz of the point-table upload (PUT /api/v1/enterprises/{e}/points) on a real
server: hypothesis-made tables, near-valid and garbage. The answer agrees with the parser (200
exactly when it accepts); a 200 stores every row as parsed; a 422 lists its errors by row and
column and changes nothing; nothing is ever a 5xx. The parser itself is fuzzed in
tests/devices/test_pointtable.py; this adds the database and HTTP around it.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from devices.pointtable import parse_point_table
from hazmon.errors import PointTableError
from tests.devices.test_pointtable import CELLS, CODES, EN, ZH, near_valid_tables, to_csv
from tests.support import Hazmon

E = "CSVF"
OUTCOMES: Counter[int] = Counter()
FIELDS = ("name", "hazard_source", "kind", "unit", "range_low", "range_high", "lolo", "lo", "hi",
          "hihi", "deadband", "on_delay_s", "off_delay_s", "roc_per_min", "stale_s", "latching")


@pytest.fixture(scope="module")
def api(hazmon: Hazmon) -> Iterator[httpx.Client]:
    client = hazmon.api()
    assert client.post("/api/v1/enterprises", json={"code": E, "name": "csv fuzz"}).status_code == 201
    for code in sorted(CODES):
        assert client.post(f"/api/v1/enterprises/{E}/hazard-sources", json={
            "code": code, "name": code, "unit_type": "storage", "chemicals": []}).status_code == 201
    yield client
    client.close()


def points(api: httpx.Client) -> dict[str, dict[str, Any]]:
    r = api.get(f"/api/v1/enterprises/{E}/points")
    assert r.status_code == 200, r.text
    return {p["tag"]: {k: p[k] for k in FIELDS} for p in r.json()["items"]}


TABLES = st.one_of(
    near_valid_tables(),
    st.builds(lambda header, rows: to_csv([header, *rows]),
              st.lists(st.sampled_from([*EN, *ZH, "other", ""]), min_size=1, max_size=8),
              st.lists(st.lists(CELLS, max_size=8), max_size=5)),
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: b"tag,kind,hi\r\n" + b),
)


@settings(max_examples=100, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(table=TABLES, bom=st.booleans())
def test_upload_agrees_with_the_parser_and_is_all_or_nothing(api: httpx.Client, table: bytes,
                                                             bom: bool) -> None:
    time.sleep(0.07)  # three requests per example: under the token's 50/s
    data = (b"\xef\xbb\xbf" + table) if bom else table
    before = points(api)
    try:
        specs = parse_point_table(data, set(CODES), max_rows=100_000)
    except PointTableError:
        specs = None
    r = api.put(f"/api/v1/enterprises/{E}/points", content=data, headers={"Content-Type": "text/csv"})
    assert r.status_code in (200, 422), (r.status_code, r.text, data)
    OUTCOMES[r.status_code] += 1
    after = points(api)
    if specs is None:
        assert r.status_code == 422, (r.text, data)
        errors = r.json()["detail"]
        assert isinstance(errors, list) and errors, errors
        for e in errors:
            assert set(e) == {"row", "column", "message"} and e["message"], e
        assert after == before, "a rejected table changed points"
        return
    assert r.status_code == 200, (r.text, data)
    assert r.json()["created"] + r.json()["updated"] == len(specs)
    for spec in specs:
        want = {k: v for k, v in dataclasses.asdict(spec).items() if k in FIELDS}
        assert after[spec.tag] == want, (spec.tag, after[spec.tag], want)
    untouched = set(before) - {s.tag for s in specs}
    assert {t: after[t] for t in untouched} == {t: before[t] for t in untouched}


def test_both_outcomes_were_exercised() -> None:
    assert OUTCOMES[200] >= 10 and OUTCOMES[422] >= 10, OUTCOMES
