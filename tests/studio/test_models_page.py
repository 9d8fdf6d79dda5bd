"""Settings → Models: every catalogue model with its size, the GPU it needs and its licence;
an install that outlives a `kill -9` of the server as an interrupted one, resumed from its
bytes; removal refused while a job may load the model; and the disk checked before anything
is fetched."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from tests.conftest import MOVIOLA
from tests.studio.test_page_checks import axe_violations

from moviola.jobs.install_files import read_state
from moviola.jobs.installs import size_text

ENV = {
    "MOVIOLA_MODEL_ALIASES": "sora-2=wan2.2-ti2v-5b,sora-2-pro=ltx-2",  # no test model named
    "MOVIOLA_WORKERS": "0",  # jobs stay queued: a model they name stays in use
    "MOVIOLA_INSTALL_MAX_BYTES_PER_S": "40000",  # the test model's 384 KB in about 10 s
}
# The first line of progress of a running install: where it started (or resumed) from.
RECORD_FIRST = """
new MutationObserver(() => {
  const line = document.querySelector('#model-tiny [data-field=line]');
  const text = line && line.textContent;
  if (/ of [\\d.]+ KB/.test(text) && !/interrupted/.test(text) && !sessionStorage.getItem('first'))
    sessionStorage.setItem('first', text);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def shots(page: Page, artifacts: Path, name: str) -> None:
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=artifacts / f"models-{name}-{width}.png")
    page.set_viewport_size({"width": 1440, "height": 900})


def kilobytes(line: str) -> float:
    done = re.match(r"([\d.]+) (KB|bytes) of", line)
    assert done, line
    return float(done[1]) / (1000 if done[2] == "bytes" else 1)


def test_an_install_outlives_a_server_kill_and_removal_waits_for_jobs(
    make_server, browser, page: Page, artifacts
):
    server = make_server(env=ENV).start()
    page.goto(server.url + "/settings/models")
    expect(page.locator("main")).to_contain_text("This machine: no GPU")
    wan = page.locator("#model-wan2\\.2-ti2v-5b")
    expect(wan).to_contain_text("no GPU here: it needs a GPU of ≈")
    expect(wan).to_contain_text("Apache-2.0")
    expect(wan).to_contain_text("download size not known offline")
    tiny = page.locator("#model-tiny")
    expect(tiny).to_contain_text("under 1 MB, saved from code")
    shots(page, artifacts, "page")

    tiny.get_by_role("button", name="Install tiny").click()
    expect(tiny.locator("[data-field=line]")).to_contain_text(
        re.compile(r" of [\d.]+ KB"), timeout=120_000
    )
    shots(page, artifacts, "installing")
    models = server.data_dir / "models"
    deadline = time.monotonic() + 30
    while read_state(models, "tiny").done_bytes == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the first bytes are on their way
    os.kill(server.process.pid, signal.SIGKILL)  # as a power cut: nobody cleans up
    server.process.wait()
    cut = read_state(models, "tiny")
    assert cut.status == "interrupted" and 0 < cut.done_bytes < cut.total_bytes
    assert not (models / "tiny").exists()  # never half there

    restarted = make_server(server.data_dir, env=ENV).start()
    page.add_init_script(RECORD_FIRST)
    page.goto(restarted.url + "/settings/models")
    tiny = page.locator("#model-tiny")
    expect(tiny.locator("[data-field=status]")).to_have_text("interrupted")
    expect(tiny).to_contain_text("interrupted: resume to go on from there")
    shots(page, artifacts, "interrupted")
    checked = browser.new_context(bypass_csp=True)  # axe is injected as an inline script
    try:
        url = restarted.url + "/settings/models"
        assert axe_violations(checked.new_page(), url) == []  # with an install's progress on it
    finally:
        checked.close()
    tiny.get_by_role("button", name="Resume install").click()

    # Installed: the page is drawn again with the model in place.
    installed = page.locator("section[aria-labelledby=installed-h] #model-tiny")
    expect(installed).to_contain_text(f"{size_text(cut.total_bytes)} on disk", timeout=60_000)
    expect(installed.get_by_role("link", name="Use on Create")).to_be_visible()
    resumed_from = page.evaluate("() => sessionStorage.getItem('first')")
    assert kilobytes(resumed_from) >= cut.done_bytes / 1000 - 0.1, resumed_from
    folder = models / "tiny"
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) == cut.total_bytes
    shots(page, artifacts, "installed")

    # A job that may load it holds it: removing waits, and says why.
    client = restarted.client()
    queued = client.videos.create(model="tiny", prompt="a kite", size="160x96", seconds="1")
    page.on("dialog", lambda dialog: dialog.accept())
    installed.get_by_role("button", name="Remove").click()
    expect(page.locator("#tiny-error")).to_contain_text("in use: 1 job queued or in progress")
    assert folder.is_dir()
    client.videos.delete(queued.id)  # cancels it
    page.locator("#model-tiny").get_by_role("button", name="Remove").click()
    expect(page.locator("#model-tiny").get_by_role("button", name="Install tiny")).to_be_visible()
    assert not folder.exists()


def start_short_of_disk(server) -> None:
    """Start `server`, whose /healthz rightly answers 503 (less free disk than it keeps)."""
    server.data_dir.mkdir(parents=True, exist_ok=True)
    with open(server.log, "ab") as log:
        server.process = subprocess.Popen(
            [MOVIOLA, "serve", "--port", str(server.port)],
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 503:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(server.log.read_text()[-3000:])


def test_an_install_is_refused_when_the_disk_is_short(make_server, page: Page):
    keep = {"MOVIOLA_MIN_FREE_DISK_BYTES": str(10**15)}  # more than this disk has
    server = make_server(env={**ENV, **keep})
    start_short_of_disk(server)
    page.goto(server.url + "/")
    card = page.locator(".onboarding")
    card.get_by_role("button", name="Install tiny").click()
    line = card.locator("[data-field=line]")
    expect(line).to_contain_text("failed: not enough disk space to install tiny", timeout=120_000)
    expect(line).to_contain_text(re.compile(r"it needs [\d.]+ KB more"))  # what it takes …
    expect(line).to_contain_text(re.compile(r"has [\d.]+ GB free"))  # … and what there is
    expect(card.get_by_role("button", name="Resume install")).to_be_visible()
    assert not (server.data_dir / "models" / "tiny").exists()
