"""A real `moviola serve` for the Studio, a real Chromium driving it, and a folder for
screenshots (`MOVIOLA_ARTIFACTS` when set, so CI can keep them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A short prompt limit, so the too-long-prompt error is quick to provoke in a browser.
STUDIO_ENV = {"MOVIOLA_MAX_PROMPT_CHARS": "300"}


@pytest.fixture(scope="session")
def studio(server_class, tmp_path_factory):
    """One keyless server for the browser tests (loopback: no sign-in, as the API)."""
    server = server_class(tmp_path_factory.mktemp("studio") / "data", STUDIO_ENV).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("MOVIOLA_ARTIFACTS")
    path = Path(folder) / "studio" if folder else tmp_path_factory.mktemp("studio-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh desktop-sized tab with its own cookies and storage."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    yield tab
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    context.close()
