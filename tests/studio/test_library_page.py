"""The library in a browser: more videos load as you scroll; several download as one zip."""

from __future__ import annotations

import zipfile

from playwright.sync_api import Page, expect


def test_scrolling_down_loads_older_videos(make_server, page: Page, small):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()  # rows only: nothing renders
    client = server.client()
    made = [client.videos.create(prompt=f"clip number {i}", **small).id for i in range(30)]
    page.goto(server.url + "/library")
    cards = page.locator(".card")
    expect(cards).to_have_count(24)
    expect(cards.first).to_have_attribute("data-id", made[-1])
    page.mouse.wheel(0, 20_000)
    expect(cards).to_have_count(30)
    expect(cards.last).to_have_attribute("data-id", made[0])
    expect(page.get_by_role("link", name="Older videos")).to_have_count(0)

    page.get_by_label("Status").select_option("queued")
    page.get_by_label("Search prompts").fill("number 29")
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
    expect(download_button).to_be_disabled()
    page.get_by_label("Select “first of two”").check()
    page.get_by_label("Select “second of two”").check()
    expect(page.locator("#picked")).to_have_text("2 selected")
    with page.expect_download() as download:
        download_button.click()
    archive = zipfile.ZipFile(download.value.path())
    assert sorted(archive.namelist()) == sorted([f"{one.id}.mp4", f"{two.id}.mp4"])
    assert archive.read(f"{one.id}.mp4") == client.videos.download_content(one.id).read()
