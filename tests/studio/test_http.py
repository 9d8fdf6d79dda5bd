"""The Studio's rules over plain HTTP: CSRF tokens, sign-in and sign-out, owner isolation."""

from __future__ import annotations

import re
import time

import httpx

from moviola.store import keys


def token(client: httpx.Client, path: str = "/") -> str:
    page = client.get(path)
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)[1]


def count_videos(server) -> int:
    return len(server.client().videos.list().data)


def eventually(check, limit_s: float = 5.0) -> bool:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def sign_in(browser: httpx.Client, secret: str) -> None:
    signed = browser.post("/signin", data={"key": secret, "csrf": token(browser, "/signin")})
    assert signed.status_code == 303


def test_a_form_without_this_sessions_token_changes_nothing(studio, small):
    before = count_videos(studio)
    with httpx.Client(base_url=studio.url) as browser:
        good = token(browser)
        form = {"prompt": "a heron", "model": "sora-2", **small}
        missing = browser.post("/create", data=form)
        wrong = browser.post("/create", data={**form, "csrf": "0" * 64})
        # The right token from a page elsewhere (another origin) is refused too.
        foreign = browser.post(
            "/create", data={**form, "csrf": good}, headers={"origin": "http://evil.example"}
        )
    with httpx.Client(base_url=studio.url) as other:  # another browser's token
        stolen = other.post("/create", data={**form, "csrf": good})
    assert [r.status_code for r in (missing, wrong, foreign, stolen)] == [403] * 4
    assert "nothing was changed" in missing.text
    assert count_videos(studio) == before


def test_keyless_studio_serves_this_machine_only(studio):
    rebound = httpx.get(studio.url + "/library", headers={"host": "evil.example"})
    assert rebound.status_code == 403
    assert "moviola keys create" in rebound.text
    assert httpx.get(studio.url + "/library").status_code == 200


def test_sign_in_with_a_key_and_out_again(make_server):
    server = make_server().start()
    secret = server.create_key("alice")
    with httpx.Client(base_url=server.url) as browser:
        first = browser.get("/library")
        assert first.status_code == 303
        assert first.headers["location"] == "/signin?next=%2Flibrary"

        refused = browser.post(
            "/signin", data={"key": "mvk_wrong", "csrf": token(browser, "/signin")}
        )
        assert refused.status_code == 400
        assert "not right" in refused.text

        csrf = token(browser, "/signin")
        assert browser.post("/signin", data={"key": secret, "next": "/library"}).status_code == 403
        signed = browser.post("/signin", data={"key": secret, "csrf": csrf, "next": "/library"})
        assert signed.status_code == 303 and signed.headers["location"] == "/library"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert secret not in signed.headers["set-cookie"]  # the session holds the key's id only
        library = browser.get("/library")
        assert library.status_code == 200 and "alice" in library.text

        # A new session starts at sign-in: the old token is no longer this session's.
        assert csrf != token(browser, "/library")
        browser.post("/signout", data={"csrf": token(browser, "/library")})
        assert browser.get("/library").status_code == 303


def test_revoking_the_key_ends_its_sessions(make_server):
    server = make_server().start()
    secret = server.create_key("bob")
    server.create_key("another")  # the server still has keys after bob's is revoked
    with httpx.Client(base_url=server.url) as browser:
        browser.post("/signin", data={"key": secret, "csrf": token(browser, "/signin")})
        assert browser.get("/library").status_code == 200
        assert keys.revoke(server.sessions(), secret[:12])
        # Within the second for which the server remembers a key, as for the API.
        assert eventually(lambda: browser.get("/library").status_code == 303)


def test_a_viewer_sees_only_their_own_videos(make_server, small):
    server = make_server().start()
    alice, bob = server.create_key("alice"), server.create_key("bob")
    mine = server.client(alice).videos.create_and_poll(prompt="alice's orchard", **small)
    theirs = server.client(bob).videos.create_and_poll(prompt="bob's quarry", **small)
    assert mine.status == theirs.status == "completed"
    with httpx.Client(base_url=server.url) as browser:
        browser.post("/signin", data={"key": alice, "csrf": token(browser, "/signin")})
        library = browser.get("/library").text
        assert "alice&#39;s orchard" in library and "quarry" not in library
        assert browser.get("/library", params={"q": "quarry"}).text.count('<li class="card') == 0
        assert browser.get(f"/videos/{mine.id}").status_code == 200
        assert browser.get(f"/videos/{theirs.id}").status_code == 404
        assert browser.get(f"/videos/{theirs.id}/file/video").status_code == 404
        ranged = browser.get(f"/videos/{mine.id}/file/video", headers={"range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100
        refused = browser.post(
            f"/videos/{theirs.id}/delete", data={"csrf": token(browser, "/library")}
        )
        assert refused.status_code == 404
    assert server.client(bob).videos.retrieve(theirs.id).status == "completed"


def test_the_first_key_is_made_in_settings_shown_once_then_guards_the_studio(make_server):
    server = make_server().start()
    with httpx.Client(base_url=server.url) as browser:
        made = browser.post(
            "/settings/keys", data={"key_name": "studio", "csrf": token(browser, "/settings")}
        )
        assert made.status_code == 200
        assert made.headers["cache-control"] == "no-store"  # the one-time secret stays out
        secret = re.search(r'id="new-secret" readonly value="(mvk_[^"]+)"', made.text)[1]
        assert secret not in browser.get("/signin").text  # shown once, never again
        # The server has a key now: the Studio (and the API) ask for it, once the server's
        # key cache has seen it (within a second).
        assert eventually(lambda: browser.get("/settings").status_code == 303)
        assert server.client(secret).videos.list().data == []
        sign_in(browser, secret)
        settings = browser.get("/settings").text
        assert "studio" in settings and secret[:12] in settings and "moviola keys" in settings
        # More keys are made on the server, not here.
        again = browser.post(
            "/settings/keys", data={"key_name": "second", "csrf": token(browser, "/settings")}
        )
        assert again.status_code == 400 and "mvk_" not in again.text.replace(secret[:12], "")
    assert [k.name for k in keys.list_keys(server.sessions())] == ["studio"]


def test_a_creator_cannot_see_revoke_or_make_other_keys(make_server):
    server = make_server().start()
    alice = server.create_key("alice")
    bob = server.create_key("bob")
    bob_key = next(k for k in keys.list_keys(server.sessions()) if k.name == "bob")
    with httpx.Client(base_url=server.url) as browser:
        sign_in(browser, alice)
        settings = browser.get("/settings")
        assert settings.status_code == 200
        assert "alice" in settings.text and alice[:12] in settings.text
        assert "bob" not in settings.text and bob[:12] not in settings.text
        assert bob_key.id not in settings.text
        csrf = token(browser, "/settings")
        revoke = browser.post(f"/settings/keys/{bob_key.id}/revoke", data={"csrf": csrf})
        assert revoke.status_code in (404, 405)
        made = browser.post("/settings/keys", data={"key_name": "mallory", "csrf": csrf})
        assert made.status_code == 400 and "mvk_" not in made.text.replace(alice[:12], "")
    live = {k.name for k in keys.list_keys(server.sessions()) if k.revoked_at is None}
    assert live == {"alice", "bob"}
    assert server.client(bob).videos.list().data == []  # bob's key still works


def test_signing_out_ends_the_session_and_every_copy_of_its_cookie(make_server):
    server = make_server().start()
    secret = server.create_key("carol")
    with httpx.Client(base_url=server.url) as browser:
        sign_in(browser, secret)
        copied = dict(browser.cookies)
        assert browser.get("/library").status_code == 200
        browser.post("/signout", data={"csrf": token(browser, "/library")})
        assert browser.get("/library").status_code == 303
    with httpx.Client(base_url=server.url, cookies=copied) as thief:
        assert thief.get("/library").status_code == 303
    with httpx.Client(base_url=server.url) as browser:  # signing in again works at once
        sign_in(browser, secret)
        assert browser.get("/library").status_code == 200


def test_sign_in_goes_back_only_to_pages_of_this_site(make_server):
    server = make_server().start()
    secret = server.create_key("dave")
    for target, lands in [
        ("/library?q=fox", "/library?q=fox"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/library\r\nSet-Cookie: x=1", "/"),
    ]:
        with httpx.Client(base_url=server.url) as browser:
            csrf = token(browser, "/signin")
            signed = browser.post("/signin", data={"key": secret, "csrf": csrf, "next": target})
            assert signed.headers["location"] == lands, target


def test_pages_are_not_cached_nor_framed_and_load_nothing_inline(studio):
    for path in ("/", "/library", "/storyboard", "/queue", "/settings", "/signin"):
        response = httpx.get(studio.url + path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-frame-options"] == "DENY"
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        # What the policy would block: inline scripts, handlers and style attributes.
        for tag in re.findall(r"<script[^>]*>", response.text):
            assert " src=" in tag or 'type="application/json"' in tag, tag
        assert not re.search(r"<[^>]+\s(on[a-z]+|style)=", response.text)


def test_a_bad_page_cursor_starts_from_the_newest(studio):
    for path in ("/library", "/queue"):
        for before in ("99999999999999999999999", "9" * 5000, "-1", "abc", "１２"):
            assert httpx.get(studio.url + path, params={"before": before}).status_code == 200


def test_too_many_requests_come_back_as_the_form_with_the_reason(make_server, small):
    server = make_server(env={"MOVIOLA_REQUESTS_PER_MINUTE": "2"}).start()
    form = {"model": "sora-2", "size": "161x96", "seconds": "1"}  # refused: nothing is made
    with httpx.Client(base_url=server.url) as browser:
        csrf = token(browser)
        for n in range(2):
            first = browser.post("/create", data={**form, "prompt": f"try {n}", "csrf": csrf})
            assert first.status_code == 400 and 'id="size-error"' in first.text
        third = browser.post("/create", data={**form, "prompt": "a third try", "csrf": csrf})
    assert third.status_code == 400
    assert third.headers["content-type"].startswith("text/html")
    assert re.search(r'id="form-error"[^>]*>[^<]*requests a minute', third.text)
    assert "a third try" in third.text  # what was typed is still in the form


def test_an_upload_over_the_limit_is_refused_beside_its_control(make_server, tmp_path):
    limit = 200_000
    server = make_server(env={"MOVIOLA_MAX_UPLOAD_BYTES": str(limit)}).start()
    big = b"\x89PNG" + b"\0" * limit
    with httpx.Client(base_url=server.url) as browser:
        csrf = token(browser)
        fields = {"csrf": csrf, "prompt": "a big picture", "model": "sora-2", "size": "160x96"}
        refused = browser.post("/create", data=fields, files={"image": ("big.png", big)})
        assert refused.status_code == 400
        assert re.search(r'id="image-error"[^>]*>[^<]*uploads up to 200,000 bytes', refused.text)
        assert "a big picture" in refused.text

        # A storyboard's images count together: two of 60% of the limit are too much.
        part = b"\x89PNG" + b"\0" * (limit * 6 // 10)
        shots = {
            "csrf": csrf,
            "shot_prompt": ["one", "two"],
            "shot_seconds": ["1", "1"],
            "size": "160x96",
        }
        files = [("shot_image", ("a.png", part)), ("shot_image", ("b.png", part))]
        board = browser.post("/storyboard", data=shots, files=files)
        assert board.status_code == 400
        assert re.search(r'id="shot_2_image-error"[^>]*>[^<]*uploads up to', board.text)
        assert ">one</textarea>" in board.text and ">two</textarea>" in board.text
    assert count_videos(server) == 0
