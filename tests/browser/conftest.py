"""Fixtures of the browser tests: Debian's chromium driven by Playwright, a seeded hazmon, and
screenshots saved under ``test-artifacts/browser/`` (``HAZMON_TEST_ARTIFACTS`` to move them).

Playwright's own browser downloads are never used (no ``playwright install``): the tests launch
the system chromium (``HAZMON_CHROMIUM``, default ``/usr/bin/chromium``) and skip, saying why,
when it or the playwright package is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1920, "height": 1080}


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; it is in the test extra)"
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium, or set HAZMON_CHROMIUM)"
    return None


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go; created here."""
    path = Path(os.environ.get("HAZMON_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def new_context(browser: Any, base_url: str, *, token: str | None = None, lang: str = "zh") -> Any:
    """A 1920×1080 context in China's time zone; signed in when given a token."""
    context = browser.new_context(viewport=VIEWPORT, base_url=base_url, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", accept_downloads=True)
    context.set_default_timeout(15_000)
    script = f"localStorage.setItem('hazmon.lang', {lang!r});"
    if token:
        script += f"localStorage.setItem('hazmon.token', {token!r});"
    context.add_init_script(script)
    return context


class Shots:
    """Takes full-viewport screenshots named by the test."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.taken: list[Path] = []

    def __call__(self, page: Any, name: str, keep_toasts: bool = False) -> Path:
        if not keep_toasts:  # messages of earlier steps would cover the page
            page.evaluate("document.getElementById('toasts')?.replaceChildren()")
        page.wait_for_timeout(150)  # let a last render and chart frame land
        file = self.path / f"{name}.png"
        page.screenshot(path=str(file))
        self.taken.append(file)
        return file


@pytest.fixture(scope="module")
def shot(artifacts: Path) -> Shots:
    return Shots(artifacts)
