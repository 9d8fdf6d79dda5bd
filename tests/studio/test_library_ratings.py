"""The library in a browser: each card shows its rating, and the rating filter narrows them."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_the_library_shows_and_filters_by_rating(make_server, page: Page, small, artifacts):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()  # rows only: nothing renders
    client = server.client()
    liked = client.videos.create(prompt="a kite over dunes", **small)
    disliked = client.videos.create(prompt="a blurry crowd", **small)
    unrated = client.videos.create(prompt="a heron at dawn", **small)
    for video, rating, note in ((liked, "up", "lovely"), (disliked, "down", "too soft")):
        client.post(
            f"/videos/{video.id}/rating", body={"rating": rating, "note": note}, cast_to=object
        )

    page.goto(server.url + "/library")
    cards = page.locator(".card")
    expect(cards).to_have_count(3)
    expect(page.locator(f'.card[data-id="{liked.id}"] .rating')).to_have_text("✓ liked")
    expect(page.locator(f'.card[data-id="{disliked.id}"] .rating')).to_have_attribute(
        "title", "too soft"
    )
    expect(page.locator(f'.card[data-id="{unrated.id}"] .rating')).to_have_count(0)
    page.screenshot(path=artifacts / "library-ratings.png", full_page=True)

    for choice, expected in (("liked", liked), ("disliked", disliked), ("unrated", unrated)):
        page.get_by_label("Rating").select_option(choice)
        page.get_by_role("button", name="Show").click()
        expect(cards).to_have_count(1)
        expect(cards.first).to_have_attribute("data-id", expected.id)
        expect(page.get_by_label("Rating")).to_have_value(choice)
    page.get_by_label("Rating").select_option("any")
    page.get_by_role("button", name="Show").click()
    expect(cards).to_have_count(3)
