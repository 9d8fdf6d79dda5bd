"""Moderation: the prompt policy (terms, patterns, an external endpoint) and NudeNet's frame
check, which really runs on the frames a tiny model generates."""

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moviola.config import Settings
from moviola.engine import GenerationRequest
from moviola.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ServiceUnavailableError,
)
from moviola.jobs.moderation import MAX_ANSWER_BYTES, QUARANTINE, PromptPolicy
from moviola.jobs.service import Caller, Upload, VideoService
from moviola.jobs.worker import Worker
from moviola.render.frame_check import BLOCKED, FrameCheck
from moviola.store import audit, db
from moviola.store.blobs import Blobs
from moviola.store.models import Video

pytestmark = pytest.mark.timeout(120)

ME = Caller()


@pytest.fixture
def moderation_endpoint():
    """A real OpenAI-compatible `/v1/moderations` on loopback: flags prompts that say
    "violence", answers 500 to prompts that say "outage", and keeps what it was sent."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            if "outage" in body["input"]:
                self.send_response(500)
                self.end_headers()
                return
            flagged = "violence" in body["input"]
            answer = {
                "id": "modr-1",
                "model": "omni-moderation-latest",
                "results": [
                    {
                        "flagged": flagged,
                        "categories": {"violence": flagged, "sexual": False},
                        "category_scores": {"violence": 0.9 if flagged else 0.01, "sexual": 0.0},
                    }
                ],
            }
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/moderations", seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def awkward_endpoint():
    """A loopback endpoint that misbehaves as failing services do. `/trickle` sends its whole
    answer, status line included, one byte every 0.7 s; `/huge` pads a valid answer with
    2 MiB of spaces and no Content-Length; `/fine` answers at once, over a kept-alive
    connection. It records which client port each request came from."""
    ports: list[int] = []
    answer = json.dumps({"results": [{"flagged": False, "categories": {}}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            ports.append(self.client_address[1])
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            try:
                if self.path == "/trickle":
                    whole = head + b"Content-Length: %d\r\n\r\n" % len(answer) + answer
                    for byte in whole:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.7)
                elif self.path == "/huge":
                    self.close_connection = True
                    self.wfile.write(head + b"Connection: close\r\n\r\n")
                    self.wfile.write(b" " * (2 * MAX_ANSWER_BYTES) + answer)
                else:
                    self.wfile.write(head + b"Content-Length: %d\r\n\r\n" % len(answer) + answer)
            except OSError:  # the client gave up: so do we
                self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", ports
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def tiny_frames(engine):
    """What the tiny model generates: noise frames, seed fixed."""
    request = GenerationRequest("a heron", model="tiny", seconds=1, size=(160, 96), seed=11)
    return engine.generate(request).frames


def make_store(tmp_path, **settings):
    settings = Settings(data_dir=tmp_path, **settings)
    engine = db.connect(settings.db_url)
    db.migrate(engine)
    sessions = db.sessions(engine)
    blobs = Blobs(settings.blobs_path)
    return settings, sessions, blobs, VideoService(settings, sessions, blobs)


def make_worker(store, engine):
    settings, sessions, blobs, _ = store
    worker = Worker(settings, sessions, blobs, name="w1", device="cpu")
    worker.engine = engine
    return worker


# --- prompts -----------------------------------------------------------------------------------


def test_blocked_terms_match_whole_words_in_any_case(tmp_path):
    policy = PromptPolicy(Settings(data_dir=tmp_path, blocked_terms="gore, brand x"))
    assert policy.check("A close-up of GORE on a wall").reason == (
        "the prompt contains the blocked term 'GORE'"
    )
    assert policy.check("an ad for Brand X").source == "terms"
    assert policy.check("a gorey sunset") is None  # a word that merely starts the same way
    assert policy.check("a heron") is None


def test_blocked_patterns_are_regular_expressions(tmp_path):
    policy = PromptPolicy(Settings(data_dir=tmp_path, blocked_patterns=r"\bcelebrit(y|ies)\b"))
    decision = policy.check("two Celebrities dancing")
    assert decision.blocked and decision.source == "patterns"
    assert policy.check("a heron") is None
    with pytest.raises(ValueError, match="not a regex"):
        Settings(data_dir=tmp_path, blocked_patterns="(unclosed")


def test_the_external_endpoint_decides_with_its_categories(tmp_path, moderation_endpoint):
    url, seen = moderation_endpoint
    settings = Settings(
        data_dir=tmp_path,
        moderation_url=url,
        moderation_api_key="sk-mod",
        moderation_model="omni-moderation-latest",
    )
    policy = PromptPolicy(settings)
    decision = policy.check("graphic violence in a street")
    assert decision.blocked and decision.source == "endpoint"
    assert decision.detail["categories"] == ["violence"]
    assert "violence" in decision.reason
    assert policy.check("a heron at dawn") is None
    assert seen[0] == {
        "path": "/v1/moderations",
        "auth": "Bearer sk-mod",
        "input": "graphic violence in a street",
        "model": "omni-moderation-latest",
    }


def test_an_endpoint_that_fails_refuses_rather_than_lets_through(tmp_path, moderation_endpoint):
    url, _ = moderation_endpoint
    policy = PromptPolicy(Settings(data_dir=tmp_path, moderation_url=url))
    # Not the caller's fault, and worth retrying: a 503 in the API, not a 400.
    with pytest.raises(ServiceUnavailableError) as caught:
        policy.check("an outage")
    assert not isinstance(caught.value, InvalidRequestError)
    assert (caught.value.code, caught.value.param) == ("moderation_unavailable", "prompt")


def test_the_timeout_bounds_the_whole_exchange_not_each_read(tmp_path, awkward_endpoint):
    url, _ = awkward_endpoint
    settings = Settings(data_dir=tmp_path, moderation_url=url + "/trickle", moderation_timeout_s=1)
    policy = PromptPolicy(settings)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        policy.check("a heron")
    # Each byte came within the timeout; the answer as a whole never would have (~70 s).
    assert time.monotonic() - started < 3
    policy.close()


def test_an_answer_too_large_to_be_one_is_refused(tmp_path, awkward_endpoint):
    url, _ = awkward_endpoint
    policy = PromptPolicy(Settings(data_dir=tmp_path, moderation_url=url + "/huge"))
    with pytest.raises(ServiceUnavailableError):
        policy.check("a heron")  # valid JSON after the padding, but not read that far
    policy.close()


def test_one_connection_serves_every_check(tmp_path, awkward_endpoint):
    url, ports = awkward_endpoint
    policy = PromptPolicy(Settings(data_dir=tmp_path, moderation_url=url + "/fine"))
    for prompt in ("a heron", "a boat", "a lighthouse"):
        assert policy.check(prompt) is None
    assert len(ports) == 3 and len(set(ports)) == 1  # kept alive, not a client per call
    policy.close()


def test_a_blocked_create_queues_nothing_and_is_audited(tmp_path):
    _, sessions, blobs, service = make_store(tmp_path, blocked_terms="gore")
    with pytest.raises(InvalidRequestError) as caught:
        service.create(ME, prompt="gore", model="tiny", seconds="1", size="160x96")
    assert caught.value.code == BLOCKED and caught.value.param == "prompt"
    with sessions() as session:
        assert session.query(Video).count() == 0
    [entry] = audit.query(sessions)
    assert entry["action"] == "moderation" and entry["video_id"] is None
    assert entry["detail"]["blocked"] and entry["detail"]["stage"] == "prompt"
    assert entry["detail"]["reason"] == "the prompt contains the blocked term 'gore'"
    assert not blobs.root.exists() or not any(blobs.root.iterdir())


# --- frames ------------------------------------------------------------------------------------


def test_nudenet_scores_generated_frames_and_the_threshold_decides(tiny_frames):
    check = FrameCheck(threshold=0.5, samples=4)
    found = check.score(tiny_frames)
    # The detector ran on 4 frames and scored them: noise is far from nudity, yet not zero.
    assert found.sampled == 4 and 0 < found.score < 0.05
    assert found.label in {"BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
                           "MALE_GENITALIA_EXPOSED", "ANUS_EXPOSED"}  # fmt: skip
    assert not check.check(tiny_frames, "the video").blocked
    # Around the score it really gave: at it, flagged; just above it, passed.
    at = FrameCheck(threshold=found.score, samples=4).check(tiny_frames, "the video")
    assert at.blocked and at.detail["score"] == round(found.score, 6)
    assert "flagged by the nudity check" in at.reason
    above = FrameCheck(threshold=found.score * 1.01, samples=4).check(tiny_frames, "the video")
    assert not above.blocked


def test_a_flagged_output_fails_and_its_files_stay_for_admins(tmp_path, engine):
    store = make_store(tmp_path, nsfw_check=True, nsfw_threshold=1e-6)
    _, sessions, blobs, service = store
    worker = make_worker(store, engine)
    job = service.create(ME, prompt="a heron", model="tiny", seconds="1", size="160x96")
    assert worker.run_one()
    with sessions() as session:
        row = session.get(Video, job.id)
    assert (row.status, row.error_code, row.files) == ("failed", BLOCKED, None)
    assert "flagged by the nudity check" in row.error_message
    [decision] = audit.query(sessions, audit.Filter(action="moderation"))
    assert decision["detail"]["stage"] == "output" and decision["detail"]["blocked"]
    kept = blobs.path(job.id, "video", attempt="w1")
    assert kept.is_file() and Path(decision["detail"]["files"]) == kept.parent
    with pytest.raises(ConflictError):  # never served
        service.content(ME, job.id, "video")


def test_deleting_a_blocked_video_keeps_its_files_for_admins(tmp_path, engine):
    store = make_store(tmp_path, nsfw_check=True, nsfw_threshold=1e-6)
    settings, sessions, blobs, service = store
    worker = make_worker(store, engine)
    job = service.create(ME, prompt="a heron", model="tiny", seconds="1", size="160x96")
    assert worker.run_one()
    kept = blobs.path(job.id, "video", attempt="w1").read_bytes()
    service.delete(ME, job.id)  # the owner may delete it: it leaves their library ...
    with pytest.raises(NotFoundError):
        service.get(ME, job.id)
    # ... but not the disk: the files move to the quarantine, out of the sweeper's reach.
    assert not blobs.folder(job.id).exists()
    quarantined = settings.data_dir / QUARANTINE / job.id
    assert (quarantined / "w1" / "video.mp4").read_bytes() == kept
    assert quarantined.stat().st_mode & 0o077 == 0
    [deleted] = audit.query(sessions, audit.Filter(action="delete"))
    assert deleted["video_id"] == job.id
    assert deleted["detail"] == {"error_code": BLOCKED, "quarantined": str(quarantined)}


def test_a_passing_output_completes_with_its_decision_logged(tmp_path, engine):
    store = make_store(tmp_path, nsfw_check=True, nsfw_threshold=0.5)
    _, sessions, _, service = store
    worker = make_worker(store, engine)
    job = service.create(ME, prompt="a heron", model="tiny", seconds="1", size="160x96")
    assert worker.run_one()
    with sessions() as session:
        row = session.get(Video, job.id)
    assert row.status == "completed"
    assert row.credentials["state"] == "untrusted"  # signed, as every output is
    [decision] = audit.query(sessions, audit.Filter(action="moderation"))
    assert decision["detail"]["stage"] == "output" and not decision["detail"]["blocked"]
    assert 0 < decision["detail"]["score"] < 0.5


def test_an_input_image_goes_through_the_same_check_before_rendering(tmp_path, engine):
    store = make_store(tmp_path, nsfw_check=True, nsfw_threshold=1e-6)
    _, sessions, _, service = store
    worker = make_worker(store, engine)
    buffer = io.BytesIO()
    Image.fromarray(np.full((96, 160, 3), 128, np.uint8)).save(buffer, "PNG")
    job = service.create(
        ME,
        prompt="a heron",
        model="tiny",
        seconds="1",
        size="160x96",
        image=Upload(buffer.getvalue(), "grey.png"),
    )
    assert worker.run_one()
    with sessions() as session:
        row = session.get(Video, job.id)
    assert (row.status, row.error_code) == ("failed", BLOCKED)
    assert row.error_message.startswith("the input_reference was flagged")
    [decision] = audit.query(sessions, audit.Filter(action="moderation"))
    assert decision["detail"]["stage"] == "input"
