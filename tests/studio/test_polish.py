"""The small things a first-time creator trips on: pages for wrong addresses, an address bar that
survives a reload, prompts the browser asks for, an image error beside the image, only the
extension lengths the server accepts, and an icon in the tab."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

HTML = {"accept": "text/html,application/xhtml+xml"}


def test_a_browser_gets_pages_for_unknown_addresses_and_wrong_methods(studio):
    missing = httpx.get(studio.url + "/no/such/page", headers=HTML)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "There is no page at this address" in missing.text

    wrong = httpx.get(studio.url + "/settings/presets/delete", headers=HTML)  # a form's target
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.headers["content-type"].startswith("text/html")


def test_api_clients_keep_the_error_envelope(studio):
    for response in (
        httpx.get(studio.url + "/v1/no-such-route", headers=HTML),
        httpx.get(studio.url + "/no/such/page"),  # no HTML asked for
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_url"


def test_a_refused_form_leaves_the_page_address_not_the_post_url(page: Page, studio):
    page.goto(studio.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a fox in the snow")
    page.get_by_label("Exact size (width×height)").fill("161x96")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#size-error")).to_be_visible()
    assert page.url == studio.url + "/create"
    page.reload()  # a reload opens Create again, not a 405
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible()


def test_a_broken_image_is_explained_beside_the_image(page: Page, studio, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    page.goto(studio.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a lighthouse")
    page.locator("input[type=file][name=image]").set_input_files(str(broken))
    page.get_by_role("button", name="Create video").click()
    error = page.locator("#image-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("image")
    expect(page.locator("#form-error")).to_have_count(0)


def test_the_video_page_asks_for_prompts_and_offers_only_allowed_extensions(
    page: Page, make_server, small
):
    # A 20 s limit: a 1 s video may grow by 4, 8, 12 or 16 seconds, not 20.
    server = make_server(env={"MOVIOLA_MAX_SECONDS": "20"}).start()
    made = server.client().videos.create_and_poll(prompt="waves", **small)
    assert made.status == "completed"
    page.goto(f"{server.url}/videos/{made.id}")
    for box in ("remix_prompt", "extend_prompt", "edit_prompt"):
        expect(page.locator(f"#{box}")).to_have_attribute("required", "")
    offered = page.locator("#extend_seconds option").evaluate_all("os => os.map(o => o.value)")
    assert offered == ["4", "8", "12", "16"]


def test_pages_are_compressed_and_the_api_is_not(studio):
    gzip = {"accept-encoding": "gzip"}
    for path in ("/", "/studio/static/studio.css"):
        assert httpx.get(studio.url + path, headers=gzip).headers["content-encoding"] == "gzip"
    models = httpx.get(studio.url + "/v1/models", headers=gzip)
    assert "content-encoding" not in models.headers


def test_every_page_has_an_icon(studio):
    page = httpx.get(studio.url + "/library").text
    assert 'rel="icon" href="/studio/static/favicon.svg"' in page
    icon = httpx.get(studio.url + "/studio/static/favicon.svg")
    assert icon.status_code == 200 and icon.text.startswith("<svg")
