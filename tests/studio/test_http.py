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
        assert browser.get("/library").status_code == 303


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
        assert browser.get("/library", params={"q": "quarry"}).text.count('class="card"') == 0
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


def test_keys_made_in_settings_are_shown_once_then_guard_the_studio(make_server):
    server = make_server().start()
    with httpx.Client(base_url=server.url) as browser:
        made = browser.post(
            "/settings/keys", data={"key_name": "studio", "csrf": token(browser, "/settings")}
        )
        assert made.status_code == 200
        secret = re.search(r'id="new-secret" readonly value="(mvk_[^"]+)"', made.text)[1]
        assert secret not in browser.get("/signin").text  # shown once, never again
        # The server has a key now: the Studio (and the API) ask for it, once the server's
        # key cache has seen it (within a second).
        deadline = time.monotonic() + 5
        while browser.get("/settings").status_code != 303:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert server.client(secret).videos.list().data == []
        browser.post("/signin", data={"key": secret, "csrf": token(browser, "/signin")})
        settings = browser.get("/settings").text
        key_id = re.search(r"/settings/keys/(key_[0-9a-f]+)/revoke", settings)[1]
        browser.post(f"/settings/keys/{key_id}/revoke", data={"csrf": token(browser, "/settings")})
        assert keys.list_keys(server.sessions())[0].revoked_at is not None
