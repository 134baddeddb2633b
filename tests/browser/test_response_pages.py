"""The response pages of the duty console in a real browser (1920×1080, Chinese by default)
against a real ``hazmon serve``: a HIHI of a gas detector at a level 1 hazard source, published
over MQTT, raises a red risk warning (warnings page: summary, list, closed loop, acknowledge) and
opens an incident by the correlation rule "any HIHI at a level 1 source" (incidents page: the
reporting clock, timeline, a note, a dispatch of the nearest rescue resource); the hazard record
on the hazard-source page, the alarm's context on the point page and the rescue resources list.
Screenshots go to ``test-artifacts/browser/`` (prefix ``r``).

The tests share one signed-in page and run in order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import missing, new_context
from tests.support import Gateway, Hazmon, wait_for

_why = missing()
if _why:
    pytest.skip(_why, allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

E = "E-CL"
HS = "HS-CL"
TAG = "GT-201"
POINTS = (
    "位号,名称,重大危险源编码,类型,单位,量程下限,量程上限,低低报,低报,高报,高高报,回差\n"
    f"{TAG},液氯库房氯气浓度,{HS},toxic_gas,ppm,0,20,,,1,3,0.1\n"
    f"PT-202,液氯储罐压力,{HS},pressure,MPa,0,2.5,,,1.6,1.8,0.02\n"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture(scope="module")
def world(hazmon: Hazmon, mqtt_url: str) -> Iterator[dict[str, Any]]:
    """An enterprise with a level 1 chlorine store, its record, a gas point and a rescue team;
    then a HIHI of the gas point: a red warning and an incident opened by the correlation rule."""
    api = hazmon.api()
    r = api.post("/api/v1/enterprises", json={"code": E, "name": "江南氯碱化工有限公司",
                                              "lat": 31.30, "lon": 120.60})
    assert r.status_code == 201, r.text
    r = api.post(f"/api/v1/enterprises/{E}/hazard-sources", json={
        "code": HS, "name": "液氯储存库", "unit_type": "storage", "residents_500m": 260,
        "chemicals": [{"name": "氯", "cas": "7782-50-5", "quantity_t": 100}]})
    assert r.status_code == 201, r.text
    assert r.json()["level"] == 1, r.json()
    r = api.put(f"/api/v1/enterprises/{E}/hazard-sources/{HS}/chemicals", json={
        "chemicals": [{"name": "氯", "cas": "7782-50-5", "quantity_t": 120}], "reason": "扩建 2 号储罐"})
    assert r.status_code == 200 and r.json()["level"] == 1, r.text
    r = api.put(f"/api/v1/enterprises/{E}/hazard-sources/{HS}/record", json={
        "lat": 31.301, "lon": 120.602, "last_identified_on": "2021-03-01",
        "responsibles": {"principal": {"name": "王建国", "phone": "13800000001", "position": "总经理"},
                         "technical": {"name": "李技术", "phone": "13800000002"},
                         "operations": {"name": "张操作", "phone": "13800000003"}},
        "equipment": [{"name": "正压式空气呼吸器", "quantity": 6, "unit": "套", "location": "库房东门"}]})
    assert r.status_code == 200, r.text
    for plan in ({"kind": "emergency_plan", "title": "液氯泄漏专项应急预案", "version": "V3.1",
                  "last_drill_on": "2023-05-10"},
                 {"kind": "onsite_procedure", "title": "液氯库房现场处置方案", "version": "V2"}):
        assert api.post(f"/api/v1/enterprises/{E}/hazard-sources/{HS}/plans", json=plan).status_code == 201
    r = api.post("/api/v1/rescue-resources", json={
        "kind": "team", "name": "园区危化品救援队", "lat": 31.31, "lon": 120.61, "quantity": 24, "unit": "人",
        "contact_name": "赵队长", "contact_phone": "0512-66660000"})
    assert r.status_code == 201, r.text
    r = api.put(f"/api/v1/enterprises/{E}/points", content=POINTS.encode(),
                headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    gw = Gateway(mqtt_url, E)
    gw.publish([{"tag": TAG, "value": 5.2, "ts": now_ms()}])
    warning = wait_for(lambda: next(iter(api.get("/api/v1/warnings", params={
        "enterprise": E, "state": "open"}).json()["items"]), None), what="a warning")
    incident = wait_for(lambda: next(iter(api.get("/api/v1/incidents", params={
        "enterprise": E}).json()["items"]), None), what="an incident")
    alarm = api.get("/api/v1/alarms", params={"enterprise": E, "tag": TAG}).json()["items"][0]
    yield {"api": api, "gw": gw, "warning": warning, "incident": incident, "alarm": alarm}
    gw.close()


@pytest.fixture(scope="module")
def page(browser: Any, hazmon: Hazmon, world: dict) -> Iterator[Any]:
    context = new_context(browser, hazmon.url, token=hazmon.token)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.errors = errors  # type: ignore[attr-defined]
    yield p
    context.close()


def test_red_warning_and_its_loop(page: Any, world: dict, shot: Any) -> None:
    w = world["warning"]
    assert w["color"] == "red" and w["state"] == "issued"
    page.goto("/#/warnings")
    expect(page.locator("#nav-warnings")).to_have_text("风险预警")
    row = page.locator(f'#list tr[data-id="{w["id"]}"]')
    expect(row).to_have_attribute("data-color", "red")
    expect(row.locator(".badge.wc")).to_have_text("红色")
    expect(page.locator(".wc-tile-red .n")).to_have_text("1")
    expect(page.locator(f'.wr-ent[data-ent="{E}"] .badge.wc-red').first).to_be_visible()
    row.click()
    detail = page.locator("#detail")
    expect(detail.locator('.loop-step[data-step="acknowledge"]')).to_have_class(re.compile(r"\bwaiting\b"))
    expect(detail.locator(".loop-due").first).to_contain_text("剩余")
    expect(detail.locator(".wr-events tbody tr")).to_have_count(1)
    shot(page, "r01-warnings-red-zh")
    detail.locator('button[data-step="acknowledge"]').click()
    dialog = page.locator("dialog.dlg")
    dialog.locator("textarea").fill("企业值班长已到现场核实")
    dialog.locator("button[type=submit]").click()
    expect(row.locator(".badge.wst")).to_have_text("企业已确认")
    expect(detail.locator('.loop-step[data-step="acknowledge"]')).to_have_class(re.compile(r"\bdone\b"))
    expect(detail.locator(".wr-events tbody tr")).to_have_count(2)
    expect(detail.locator('button[data-step="feedback"]')).to_be_visible()
    got = world["api"].get(f"/api/v1/warnings/{w['id']}").json()
    assert got["state"] == "acknowledged" and got["ack_comment"] == "企业值班长已到现场核实"
    shot(page, "r02-warning-acknowledged-zh")


def test_auto_opened_incident_note_and_dispatch(page: Any, world: dict, shot: Any) -> None:
    inc = world["incident"]
    assert inc["rule"] == "hihi_level1"
    page.goto("/#/incidents")
    row = page.locator(f'#list tr[data-id="{inc["id"]}"]')
    expect(row).to_contain_text("一级危险源高高报")
    expect(row.locator(".rclock")).to_contain_text("距上报期限")
    shot(page, "r03-incidents-zh")
    row.locator("a").click()
    expect(page).to_have_url(re.compile(rf"#/incidents/{inc['id']}$"))
    expect(page.locator("#report-clock .big")).to_have_text(re.compile(r"^\d{2}:\d{2}$|^\d+:\d{2}:\d{2}$"))
    expect(page.locator('#timeline li[data-kind="alarm"]').first).to_contain_text(TAG)
    page.fill("#note-text", "已通知园区救援队，疏散下风向人员")
    page.click("#note-save")
    note = page.locator('#timeline li[data-kind="note"]')
    expect(note).to_contain_text("已通知园区救援队")
    expect(note.locator(".tl-actor")).to_have_text("admin")
    # the nearest rescue resource, with its distance, dispatched from the list
    nearby = page.locator("#nearby tr[data-res]").first
    expect(nearby).to_contain_text("园区危化品救援队")
    expect(nearby.locator("td").first).to_contain_text("km")
    nearby.locator("button[data-send]").click()
    page.locator("dialog.dlg button[type=submit]").click()
    disp = page.locator("#dispatches tr[data-dispatch]")
    expect(disp).to_have_count(1)
    expect(disp.locator(".badge.dst")).to_have_text("已调派")
    disp.locator('button[data-dstatus="en_route"]').click()
    expect(disp.locator(".badge.dst")).to_have_text("在途")
    expect(page.locator(".inc-title .badge.ist")).to_have_text("响应中")
    expect(page.locator('#timeline li[data-kind="dispatch"]').first).to_be_visible()
    shot(page, "r04-incident-detail-zh")
    page.click("#reported")
    page.locator("dialog.dlg button[type=submit]").click()
    expect(page.locator("#report-clock .big-ok")).to_have_text("已上报")
    timeline = world["api"].get(f"/api/v1/incidents/{inc['id']}/timeline").json()["items"]
    assert any(e["kind"] == "note" and "疏散" in e["text"] and e["actor"] == "admin" for e in timeline)
    # the report opens as a blob (fetched with the token)
    with page.context.expect_page() as popup:
        page.click("#export-html")
    report = popup.value
    report.wait_for_url(re.compile(r"^blob:"))
    expect(report.locator("body")).to_contain_text("液氯储存库")
    report.close()


def test_open_incident_from_the_board(page: Any, world: dict) -> None:
    page.goto(f"/#/alarms?enterprise={E}")
    alarm = world["alarm"]
    row = page.locator(f'#tbody tr[data-id="{alarm["id"]}"]')
    expect(row).to_be_visible()
    row.locator("input[type=checkbox]").check()
    expect(page.locator("#bulk-incident")).to_be_enabled()
    page.click("#bulk-incident")
    dialog = page.locator("dialog.dlg")
    dialog.locator("input[name=title]").fill("手动立案：液氯库房气体报警")
    dialog.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"#/incidents/\d+$"))
    expect(page.locator("#inc-title")).to_have_text("手动立案：液氯库房气体报警")
    expect(page.locator("#alarms tbody tr")).to_have_count(1)


def test_hazard_record_and_alarm_context(page: Any, world: dict, shot: Any) -> None:
    page.goto(f"/#/hazard/{E}/{HS}")
    expect(page.locator(".hs-name")).to_have_text("液氯储存库")
    expect(page.locator("#people")).to_contain_text("13800000001")
    expect(page.locator("#plans tbody tr")).to_have_count(2)
    expect(page.locator("#plans .overdue-row").first).to_contain_text("演练超期")
    expect(page.locator("#record")).to_contain_text("正压式空气呼吸器")
    expect(page.locator("#reident-due")).to_be_visible()
    expect(page.locator("#history tbody tr")).to_have_count(2)
    expect(page.locator("#history tbody tr").first).to_contain_text("扩建 2 号储罐")
    expect(page.locator("#nearby")).to_contain_text("园区危化品救援队")
    expect(page.locator(".hs-warning .badge.wc-red")).to_be_visible()
    shot(page, "r05-hazard-record-zh")
    page.goto(f"/#/point/{E}/{TAG}")
    page.locator('#history button[data-act="log"]').first.click()
    ctx = page.locator("#history .alarm-ctx")
    expect(ctx).to_contain_text("王建国")
    expect(ctx).to_contain_text("液氯泄漏专项应急预案")
    expect(ctx).to_contain_text("园区危化品救援队")
    expect(ctx.locator(".badge.wc-red")).to_be_visible()
    ctx.scroll_into_view_if_needed()
    shot(page, "r06-alarm-context-zh")


def test_resources_and_english(page: Any, shot: Any) -> None:
    page.goto("/#/resources")
    expect(page.locator("#list tbody tr")).to_have_count(1)
    expect(page.locator("#list")).to_contain_text("赵队长")
    page.click("#lang")
    expect(page.locator("h1")).to_have_text("Rescue resources")
    page.goto("/#/warnings")
    expect(page.locator("#list .badge.wc").first).to_have_text("Red")
    shot(page, "r07-warnings-en")
    page.click("#lang")
    expect(page.locator("h1")).to_have_text("风险预警")


def test_no_console_errors(page: Any) -> None:
    assert not [e for e in page.errors if "Failed to load resource" not in e], page.errors
