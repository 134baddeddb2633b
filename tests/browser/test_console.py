"""The duty console in a real browser (1920×1080, Chinese by default) against a real
``hazmon serve``: sign in with a token, an alarm published over MQTT appears on the board
without a reload (live stream, polling when the stream fails, Last-Event-ID on reconnect),
acknowledge and shelve from the board, switch the language, and the point, hazard source,
report and shift handover pages. Screenshots go to ``test-artifacts/browser/``.

The tests of this module share one signed-in page and run in order (the board's alarms build
up); each also stands on its own data.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import missing, new_context
from tests.support import Gateway, Hazmon, wait_for

_why = missing()
if _why:
    pytest.skip(_why, allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

E = "E-WEB"
HS = "HS-01"
POINTS = (
    "位号,名称,重大危险源编码,类型,单位,量程下限,量程上限,低低报,低报,高报,高高报,回差\n"
    f"LT-101,1号液氨储罐液位,{HS},level,%,0,100,5,10,80,90,1\n"
    f"PT-102,1号液氨储罐压力,{HS},pressure,MPa,0,2.5,,,1.6,1.8,0.02\n"
    f"GT-103,罐区氨气浓度,{HS},toxic_gas,ppm,0,100,,,20,40,1\n"
    f"TT-104,1号液氨储罐温度,{HS},temperature,℃,-40,60,,,35,45,0.5\n"
    f"LT-105,2号液氨储罐液位,{HS},level,%,0,100,5,10,80,90,1\n"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture(scope="module")
def world(hazmon: Hazmon, mqtt_url: str) -> Iterator[dict[str, Any]]:
    """An enterprise with a graded hazard source, five points and 30 minutes of LT-101 history."""
    api = hazmon.api()
    assert api.post("/api/v1/enterprises", json={"code": E, "name": "示范化工有限公司",
                                                 "lat": 30.27, "lon": 120.15}).status_code == 201
    r = api.post(f"/api/v1/enterprises/{E}/hazard-sources", json={
        "code": HS, "name": "液氨储罐区", "unit_type": "storage", "residents_500m": 120,
        "chemicals": [{"name": "氨", "cas": "7664-41-7", "quantity_t": 80},
                      {"name": "液化石油气", "quantity_t": 30}]})
    assert r.status_code == 201, r.text
    r = api.put(f"/api/v1/enterprises/{E}/points", content=POINTS.encode(),
                headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    gw = Gateway(mqtt_url, E)
    start = now_ms() - 30 * 60_000
    history = [{"tag": "LT-101", "value": round(62 + 8 * ((i % 20) / 20) + (i // 20), 2),
                "ts": start + i * 30_000} for i in range(58)]
    history += [{"tag": "TT-104", "value": 21.5, "ts": start + i * 60_000} for i in range(29)]
    gw.publish(history)
    wait_for(lambda: api.get(f"/api/v1/enterprises/{E}/points/LT-101").json()["latest"],
             what="LT-101 history stored")
    yield {"api": api, "gw": gw, "hazmon": hazmon}
    gw.close()


@pytest.fixture(scope="module")
def page(browser: Any, hazmon: Hazmon, world: dict) -> Iterator[Any]:
    """The duty officer's page, signed in through the sign-in form."""
    context = new_context(browser, hazmon.url)
    p = context.new_page()
    p.goto("/")
    expect(p).to_have_url(f"{hazmon.url}/#/signin")
    p.fill("#token", hazmon.token)
    p.click("#go")
    expect(p.locator("#tiles .tile").first).to_be_visible()
    yield p
    context.close()


def alarm_of(api: httpx.Client, tag: str, condition: str) -> dict | None:
    items = api.get("/api/v1/alarms", params={"enterprise": E, "tag": tag, "state": "open"}).json()["items"]
    return next((a for a in items if a["condition"] == condition), None)


def raise_alarm(world: dict, tag: str, value: float, condition: str) -> dict:
    world["gw"].publish([{"tag": tag, "value": value, "ts": now_ms()}])
    return wait_for(lambda: alarm_of(world["api"], tag, condition), what=f"{tag} {condition}")


def test_sign_in_with_a_token(browser: Any, hazmon: Hazmon, world: dict, shot: Any) -> None:
    context = new_context(browser, hazmon.url)
    p = context.new_page()
    try:
        p.goto("/#/alarms")
        expect(p.locator("h1")).to_have_text("值班台登录")
        p.fill("#token", "not-a-token")
        p.click("#go")
        expect(p.locator("#msg")).to_contain_text("401")
        shot(p, "01-signin-zh")
        p.fill("#token", hazmon.token)
        p.click("#go")
        expect(p).to_have_url(f"{hazmon.url}/#/alarms")
        expect(p.locator("#nav-alarms")).to_have_text("报警看板")
        assert p.evaluate("localStorage.getItem('hazmon.token')") == hazmon.token
    finally:
        context.close()


def test_alarm_appears_without_reload(page: Any, world: dict, shot: Any) -> None:
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#status")).to_have_attribute("data-mode", "stream")
    alarm = raise_alarm(world, "LT-101", 93.4, "HIHI")
    row = page.locator(f'#tbody tr[data-id="{alarm["id"]}"]')
    expect(row).to_be_visible(timeout=5000)
    expect(row).to_have_attribute("data-state", "UNACK_ACTIVE")
    expect(row).to_have_class(re.compile(r"\bprio-high\b.*\bunack\b"))
    expect(row.locator(".dot")).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    expect(page.locator("#status")).to_have_attribute("data-mode", "stream")
    expect(page.locator(".tile-UNACK_ACTIVE .n")).not_to_have_text("0")
    # a second, lower-priority alarm sorts below the high one
    low = raise_alarm(world, "GT-103", 25, "HI")
    expect(page.locator(f'#tbody tr[data-id="{low["id"]}"]')).to_be_visible(timeout=5000)
    ids = page.eval_on_selector_all("#tbody tr", "rows => rows.map(r => r.dataset.id)")
    assert ids.index(str(alarm["id"])) < ids.index(str(low["id"]))
    shot(page, "02-board-new-alarm-zh")


def test_acknowledge_from_the_board(page: Any, world: dict, shot: Any) -> None:
    alarm = alarm_of(world["api"], "LT-101", "HIHI") or raise_alarm(world, "LT-101", 93.4, "HIHI")
    row = page.locator(f'#tbody tr[data-id="{alarm["id"]}"]')
    row.locator('button[data-act="ack"]').click()
    dialog = page.locator("dialog.dlg")
    expect(dialog).to_be_visible()
    dialog.locator("textarea").fill("已电话联系企业值班长")
    shot(page, "03-ack-dialog-zh")
    dialog.locator("button[type=submit]").click()
    expect(row).to_have_attribute("data-state", "ACK_ACTIVE")
    expect(row.locator(".dot")).to_have_count(0)
    acked = world["api"].get(f"/api/v1/alarms/{alarm['id']}").json()
    assert acked["state"] == "ACK_ACTIVE" and acked["acked_by"] == "admin"
    events = world["api"].get(f"/api/v1/alarms/{alarm['id']}/events").json()["items"]
    assert events[-1]["comment"] == "已电话联系企业值班长"
    shot(page, "04-board-acknowledged-zh")


def test_shelve_from_the_board(page: Any, world: dict, shot: Any) -> None:
    alarm = raise_alarm(world, "PT-102", 1.85, "HIHI")   # high priority: at most 1 h
    row = page.locator(f'#tbody tr[data-id="{alarm["id"]}"]')
    expect(row).to_be_visible(timeout=5000)
    dialog = page.locator("dialog.dlg")

    # longer than a high-priority alarm may be shelved: warned, and the server says 422
    row.locator('button[data-act="shelve"]').click()
    expect(dialog.locator(".shelve-max .max-item.on")).to_contain_text("1 小时")
    dialog.locator("textarea[name=reason]").fill("压力变送器检修")
    dialog.locator("select[name=preset]").select_option("custom")
    dialog.locator("input[name=minutes]").fill("120")
    expect(dialog.locator("[data-over]")).to_be_visible()
    shot(page, "05-shelve-dialog-over-max-zh")
    dialog.locator("button[type=submit]").click()
    expect(page.locator(".toast-error").last).to_contain_text("422")
    expect(row).to_have_attribute("data-state", "UNACK_ACTIVE")

    # 30 minutes: shelved
    row.locator('button[data-act="shelve"]').click()
    dialog.locator("button[type=submit]").click()            # no reason yet: refused in place
    expect(dialog.locator(".dlg-error")).to_be_visible()
    dialog.locator("textarea[name=reason]").fill("压力变送器检修，已通知企业")
    dialog.locator("select[name=preset]").select_option("30")
    dialog.locator("button[type=submit]").click()
    expect(row).to_have_attribute("data-state", "SHELVED")
    expect(row.locator('button[data-act="unshelve"]')).to_be_visible()
    shelved = world["api"].get(f"/api/v1/alarms/{alarm['id']}").json()
    assert shelved["state"] == "SHELVED" and shelved["shelve_reason"] == "压力变送器检修，已通知企业"
    shot(page, "06-board-shelved-zh", keep_toasts=True)


def test_bulk_acknowledge(page: Any, world: dict) -> None:
    alarms = [raise_alarm(world, "LT-105", 92, "HIHI"), raise_alarm(world, "TT-104", 40, "HI")]
    for a in alarms:
        page.locator(f'#tbody tr[data-id="{a["id"]}"] input[type=checkbox]').check()
    expect(page.locator("#bulk-ack")).to_contain_text("2")
    page.click("#bulk-ack")
    page.locator("dialog.dlg button[type=submit]").click()
    for a in alarms:
        expect(page.locator(f'#tbody tr[data-id="{a["id"]}"]')).to_have_attribute("data-state", "ACK_ACTIVE")


def test_filters(page: Any, world: dict) -> None:
    page.select_option("#f-priority", "high")
    rows = page.locator("#tbody tr")
    expect(rows.first).to_be_visible()
    classes = page.eval_on_selector_all("#tbody tr", "rows => rows.map(r => r.className)")
    assert classes and all("prio-high" in c for c in classes)
    page.select_option("#f-priority", "")
    page.select_option("#f-enterprise", E)
    expect(page.locator(f'#f-hazard option[value="{HS}"]')).to_have_count(1)
    page.select_option("#f-hazard", HS)
    expect(page).to_have_url(re.compile(f"hazard_source={HS}"))
    expect(rows.first).to_be_visible()
    page.click("#f-reset")


def test_switch_language(page: Any, shot: Any) -> None:
    page.goto("/#/alarms")
    expect(page.locator("#nav-alarms")).to_have_text("报警看板")
    page.click("#lang")
    expect(page.locator("#nav-alarms")).to_have_text("Alarm board")
    assert page.evaluate("document.documentElement.lang") == "en"
    expect(page.locator("#bulk-shelve")).to_contain_text("Shelve selected")
    expect(page.locator('#tbody tr[data-state="SHELVED"] .badge.st').first).to_have_text("Shelved")
    shot(page, "07-board-en")
    page.click("#lang")
    expect(page.locator("#nav-alarms")).to_have_text("报警看板")
    assert page.evaluate("localStorage.getItem('hazmon.lang')") == "zh"


def test_point_page_draws_the_trend_with_limits(page: Any, world: dict, shot: Any) -> None:
    page.goto(f"/#/point/{E}/LT-101")
    chart = page.locator("#chart canvas")
    expect(chart.first).to_be_visible()
    page.wait_for_function("""() => {
        const c = window.echarts && echarts.getInstanceByDom(document.getElementById('chart'));
        return c && c.getOption().series[0].data.length > 10; }""")
    option = page.evaluate("""() => {
        const o = echarts.getInstanceByDom(document.getElementById('chart')).getOption();
        return { n: o.series[0].data.length, limits: o.series[0].markLine.data.map(d => d.yAxis) }; }""")
    assert option["n"] >= 58 and sorted(option["limits"]) == [5, 10, 80, 90]
    history = page.locator("#history tbody tr")
    expect(page.locator("#history tbody")).to_contain_text("HIHI")
    expect(history.first).to_be_visible()
    page.locator('#history button[data-act="log"]').first.click()
    expect(page.locator("#history .log-table")).to_be_visible()
    shot(page, "08-point-trend-zh")


def test_hazard_source_page(page: Any, world: dict, shot: Any) -> None:
    page.goto(f"/#/hazard/{E}/{HS}")
    expect(page.locator(".hs-name")).to_have_text("液氨储罐区")
    expect(page.locator(".hs-title .badge.lvl")).to_have_text("三级")
    expect(page.locator("#points tbody tr")).to_have_count(5)
    expect(page.locator("#alarms tbody tr").first).to_be_visible()
    expect(page.locator("#mode-btn")).to_be_enabled()
    page.click("#mode-btn")
    dialog = page.locator("dialog.dlg")
    expect(dialog.locator("select[name=mode]")).to_have_value("maintenance")
    dialog.locator("textarea[name=reason]").fill("2 号储罐检修")
    dialog.locator("button[type=submit]").click()
    expect(page.locator(".hs-mode .badge.mode")).to_have_text("检修")
    expect(page.locator('#alarms .badge.st-SUPPRESSED').first).to_be_visible()
    shot(page, "09-hazard-source-maintenance-zh")
    page.click("#mode-btn")
    expect(dialog.locator("select[name=mode]")).to_have_value("normal")
    dialog.locator("button[type=submit]").click()
    expect(page.locator(".hs-mode .badge.mode")).to_have_text("正常")


def test_alarm_performance_report(page: Any, shot: Any) -> None:
    page.goto("/#/report")
    expect(page.locator("#kpis .kpi").first).to_be_visible()
    page.wait_for_function("""() => ['c-rate', 'c-flood', 'c-top', 'c-mix'].every((id) => {
        const c = window.echarts && echarts.getInstanceByDom(document.getElementById(id));
        return c && c.getOption().series.length > 0; })""")
    page.wait_for_function("""() => echarts.getInstanceByDom(document.getElementById('c-rate'))
        .getOption().series[0].data.some((v) => v !== null && v > 0)""")
    top = page.evaluate("echarts.getInstanceByDom(document.getElementById('c-top')).getOption().series[0].data")
    assert sum(top) >= 5
    with page.expect_download() as dl:
        page.click("#csv")
    assert dl.value.suggested_filename.startswith("alarm-performance-")
    shot(page, "10-report-zh")


def test_shift_handover(page: Any, world: dict, shot: Any) -> None:
    page.goto("/#/handover")
    expect(page.locator("#ho-raised tbody tr").first).to_be_visible()
    expect(page.locator("#ho-acknowledged tbody tr")).to_have_count(3)
    expect(page.locator("#ho-shelved tbody tr")).to_contain_text("压力变送器检修")
    expect(page.locator("#ho-suppressed tbody tr").first).to_contain_text("2 号储罐检修")
    shot(page, "11-handover-zh")
    with page.expect_download() as dl:
        page.click("#csv")
    text = open(dl.value.path(), encoding="utf-8-sig").read()
    assert "still open at the end of the shift" in text and "压力变送器检修" in text
    page.emulate_media(media="print")
    expect(page.locator(".signatures")).to_be_visible()
    expect(page.locator("#header")).to_be_hidden()
    shot(page, "12-handover-print")
    page.emulate_media(media="screen")


def test_board_polls_when_the_stream_fails(browser: Any, hazmon: Hazmon, world: dict, shot: Any) -> None:
    context = new_context(browser, hazmon.url, token=hazmon.token)
    context.route("**/api/v1/alarms/stream*", lambda route: route.abort())
    p = context.new_page()
    try:
        p.goto("/#/alarms")
        expect(p.locator("#status")).to_have_attribute("data-mode", "poll", timeout=10_000)
        alarm = raise_alarm(world, "GT-103", 45, "HIHI")
        expect(p.locator(f'#tbody tr[data-id="{alarm["id"]}"]')).to_be_visible(timeout=6000)
        expect(p.locator("#status")).to_contain_text("轮询")
        shot(p, "13-board-polling-fallback-zh")
    finally:
        context.close()


def test_stream_reconnects_with_last_event_id(browser: Any, hazmon: Hazmon, world: dict) -> None:
    """The first stream ends after one event with id 1; the board reconnects saying
    Last-Event-ID: 1 and then gets the real stream's events."""
    context = new_context(browser, hazmon.url, token=hazmon.token)
    seen: list[str | None] = []

    def stream(route: Any) -> None:
        seen.append(route.request.headers.get("last-event-id"))
        if len(seen) == 1:
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                          body="retry: 1000\n\nid: 1\nevent: ping\ndata: {}\n\n")
        else:
            route.continue_()
    context.route("**/api/v1/alarms/stream*", stream)
    p = context.new_page()
    try:
        p.goto("/#/alarms")
        for _ in range(100):          # route handlers run while Playwright waits, not in sleep()
            if len(seen) >= 2:
                break
            p.wait_for_timeout(100)
        assert seen[:2] == [None, "1"]
        expect(p.locator("#status")).to_have_attribute("data-mode", "stream")
        alarm = raise_alarm(world, "TT-104", 50, "HIHI")
        expect(p.locator(f'#tbody tr[data-id="{alarm["id"]}"]')).to_be_visible(timeout=5000)
    finally:
        context.close()


def test_no_console_errors(page: Any) -> None:
    """Every page loads without a script error (nothing from a CDN, every module found)."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for route in ("#/alarms", "#/enterprises", f"#/hazard/{E}/{HS}", f"#/point/{E}/LT-101",
                  "#/report", "#/handover"):
        page.goto("/" + route)
        page.wait_for_timeout(800)   # the board's stream never idles: a fixed settle time
    assert errors == [], json.dumps(errors, ensure_ascii=False)
    base = page.url.split("/#")[0]
    assert all(u.startswith(base) for u in requests), [u for u in requests if not u.startswith(base)]
