"""The library in a browser: more videos load as you scroll; several download as one zip."""

from __future__ import annotations

import re
import zipfile

from playwright.sync_api import Page, expect

from moviola.studio.downloads import file_name, short_id

# Counts the page's open live-progress streams.
COUNT_STREAMS = """
window.openStreams = 0;
const Real = window.EventSource;
window.EventSource = class extends Real {
  constructor(...args) { super(...args); window.openStreams += 1; }
  close() { if (this.readyState !== 2) window.openStreams -= 1; super.close(); }
};
"""
SET_HIDDEN = """hidden => {
  Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_scrolling_down_loads_older_videos_with_one_stream(make_server, page: Page, small):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()  # rows only: nothing renders
    client = server.client()
    made = [client.videos.create(prompt=f"clip number {i}", **small).id for i in range(30)]
    page.add_init_script(COUNT_STREAMS)
    page.goto(server.url + "/library")
    cards = page.locator(".card")
    expect(cards).to_have_count(24)
    expect(cards.first).to_have_attribute("data-id", made[-1])
    page.mouse.wheel(0, 20_000)
    expect(cards).to_have_count(30)
    expect(cards.last).to_have_attribute("data-id", made[0])
    expect(page.get_by_role("link", name="Older videos")).to_have_count(0)
    # More cards replace the page's stream (now watching all 30), never add one.
    assert page.evaluate("window.openStreams") == 1
    # A hidden tab holds no connection; shown again, it watches again.
    page.evaluate(SET_HIDDEN, True)
    assert page.evaluate("window.openStreams") == 0
    page.evaluate(SET_HIDDEN, False)
    assert page.evaluate("window.openStreams") == 1

    page.get_by_label("Status").select_option("queued")
    page.get_by_label("Search", exact=True).fill("number 29")
    page.get_by_role("button", name="Show").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("data-id", made[29])
    expect(page.get_by_label("Status")).to_have_value("queued")


def test_selected_videos_download_as_one_zip(make_server, page: Page, small):
    server = make_server().start()
    client = server.client()
    one = client.videos.create_and_poll(prompt="first of two", **small)
    two = client.videos.create_and_poll(prompt="second of two", **small)
    page.goto(server.url + "/library")
    download_button = page.get_by_role("button", name="Download selected")
    expect(download_button).to_be_hidden()  # the bulk actions show once a video is ticked
    page.get_by_label("Select “first of two”").check()
    expect(download_button).to_be_enabled()
    page.get_by_label("Select “second of two”").check()
    expect(page.locator("#picked")).to_have_text("2 selected")
    with page.expect_download() as download:
        download_button.click()
    archive = zipfile.ZipFile(download.value.path())
    # Named as each would be alone: after its prompt.
    named = {video.id: file_name(video.prompt, video.id, ".mp4") for video in (one, two)}
    assert named[one.id] == f"first-of-two-{short_id(one.id)}.mp4"
    assert sorted(archive.namelist()) == sorted(named.values())
    assert archive.read(named[one.id]) == client.videos.download_content(one.id).read()
    # Packed in the data dir's own temporary folder, and gone once sent.
    assert list((server.data_dir / "tmp").iterdir()) == []


def test_scrolling_after_the_session_ended_goes_to_sign_in(make_server, page: Page, small):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()
    secret = server.create_key("erin")
    client = server.client(secret)
    for i in range(30):
        client.videos.create(prompt=f"clip number {i}", **small)
    page.goto(server.url + "/library")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".card")).to_have_count(24)
    # Signed out in another tab: this one's cookie no longer works.
    other = page.context.new_page()
    other.goto(server.url + "/library")
    other.get_by_role("button", name="Sign out").click()
    expect(other).to_have_url(re.compile(r"/signin"))
    page.mouse.wheel(0, 20_000)
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Flibrary$"))
    expect(page.locator(".card")).to_have_count(0)
