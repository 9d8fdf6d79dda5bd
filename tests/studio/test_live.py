"""Live progress: the server pushes each job's state (Server-Sent Events); cancel stops a job."""

from __future__ import annotations

import json
import time

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import update

from moviola.store.models import Video


def events(server, ids: list[str], until: str = "done", limit_s: float = 30) -> list[tuple]:
    """The stream's events, read until `until` (or the time limit)."""
    got = []
    params = [("id", i) for i in ids]
    with httpx.stream("GET", server.url + "/studio/events", params=params, timeout=limit_s) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        deadline = time.monotonic() + limit_s
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                got.append((name, json.loads(line[6:])))
                if name == until:
                    break
            if time.monotonic() > deadline:
                break
    return got


def test_the_stream_follows_a_job_to_the_end(studio, small):
    video = studio.client().videos.create(prompt="a comet over hills", **small)
    got = events(studio, [video.id])
    states = [data for name, data in got if name == "job"]
    assert states[-1]["status"] == "completed" and states[-1]["progress"] == 100
    assert got[-1] == ("done", {"ids": [video.id]})


def test_waiting_jobs_show_their_place_and_can_be_cancelled(make_server, page: Page, small):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()  # nothing runs: all wait
    client = server.client()
    first = client.videos.create(prompt="first in line", **small)
    second = client.videos.create(prompt="second in line", **small)

    page.goto(server.url + "/queue")
    waiting = page.locator(f"[data-job='{second.id}']")
    expect(waiting.locator("[data-field=position]")).to_have_text("#2 in the queue")
    expect(page.locator(f"[data-job='{first.id}'] [data-field=position]")).to_have_text(
        "#1 in the queue"
    )
    # Cancelling asks first, and is no longer deleting: the job stays, marked cancelled.
    page.once("dialog", lambda dialog: dialog.accept())
    waiting.get_by_role("button", name="Cancel").click()
    expect(page.locator(f"[data-job='{second.id}']")).to_have_count(0)
    expect(page.locator("table.queue tbody tr").first.locator(".badge")).to_have_text("cancelled")
    listed = client.videos.list().data
    assert [(v.id, v.status) for v in listed] == [(second.id, "failed"), (first.id, "queued")]
    assert listed[0].error.code == "cancelled"


def test_a_failed_job_says_why_in_plain_words(make_server, page: Page, small):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()
    video = server.client().videos.create(prompt="a storm", **small)
    page.goto(f"{server.url}/videos/{video.id}")
    expect(page.locator("[data-field=status]")).to_have_text("queued")
    # What a worker writes when a render fails for good.
    with server.sessions().begin() as session:
        session.execute(
            update(Video)
            .where(Video.id == video.id)
            .values(
                status="failed",
                error_code="generation_failed",
                error_message="the GPU ran out of memory at 1280x720; try a smaller size",
            )
        )
    # The live stream brings the failure; the page then shows it with a way to try again.
    expect(page.get_by_role("alert")).to_contain_text("ran out of memory", timeout=10_000)
    page.get_by_role("link", name="Try again with these settings").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a storm")
    expect(page.get_by_label("Exact size (width×height)")).to_have_value(small["size"])


def test_the_server_stops_promptly_with_a_stream_open(make_server, small):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()  # the job waits: streams stay
    video = server.client().videos.create(prompt="waiting forever", **small)
    streams = []
    try:
        for _ in range(3):  # three tabs watching
            stream = httpx.stream(
                "GET", server.url + "/studio/events", params={"id": video.id}, timeout=30
            )
            response = stream.__enter__()
            assert next(response.iter_lines()).startswith("retry:")
            streams.append(stream)
        time.sleep(1.5)  # the streams are past their first reads, waiting on the job
        started = time.monotonic()
        server.process.terminate()
        server.process.wait(timeout=15)
        took = time.monotonic() - started
    finally:
        for stream in streams:
            stream.__exit__(None, None, None)
    # The streams ended when the server was asked to stop, not when their jobs did.
    assert took < 5, f"the server took {took:.1f} s to stop"
