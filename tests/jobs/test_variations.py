"""Variations at intake: `n` jobs of one request, checked and queued together (all or none, the
queue limit counting each), and "vary": a finished video's request again, with new seeds."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image
from sqlalchemy import func, select

from moviola.config import Settings
from moviola.errors import ConflictError, InvalidRequestError, TooManyRequestsError
from moviola.jobs.service import LAST_FRAME_SUFFIX, Caller, Shot, Upload, VideoService
from moviola.store import audit, db
from moviola.store.blobs import Blobs
from moviola.store.models import Video, VideoStatus

ME = Caller()
SMALL = {"model": "tiny", "seconds": "1", "size": "160x96"}


def png(color: tuple[int, int, int]) -> Upload:
    out = io.BytesIO()
    Image.new("RGB", (160, 96), color).save(out, "PNG")
    return Upload(out.getvalue(), "frame.png")


def rows(sessions) -> list[Video]:
    with sessions() as session:
        return list(session.execute(select(Video).order_by(Video.seq)).scalars())


def finish_all(worker) -> None:
    while worker.run_one():
        pass


def test_n_jobs_share_a_group_and_run_in_order(store, worker):
    _, sessions, _, service = store
    first = service.create(ME, prompt="a heron", **SMALL, extras={"n": 3, "seed": 20})
    made = rows(sessions)
    assert [v.id for v in made] == first.params["variations"]
    assert [v.params["seed"] for v in made] == [20, 21, 22]
    assert {v.group_id for v in made} == {first.group_id} and first.group_id.startswith("group_")
    assert "n" not in first.params  # made, not asked again by a remix or a "try again"
    finish_all(worker)
    assert [v.status for v in rows(sessions)] == [VideoStatus.COMPLETED] * 3
    audited = audit.query(sessions, audit.Filter(action="create"))
    assert [e["video_id"] for e in audited] == first.params["variations"]


def test_the_queue_limit_counts_every_variation_even_when_asked_at_once(tmp_path):
    settings = Settings(data_dir=tmp_path, max_queued_per_key=4)
    engine = db.connect(settings.db_url)
    db.migrate(engine)
    sessions = db.sessions(engine)
    service = VideoService(settings, sessions, Blobs(settings.blobs_path))
    results: list[str] = []
    start = threading.Barrier(6)

    def three() -> None:
        start.wait()
        try:
            service.create(ME, prompt="a heron", **SMALL, extras={"n": 3})
            results.append("ok")
        except TooManyRequestsError:
            results.append("refused")

    threads = [threading.Thread(target=three) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 1  # 3 fit in 4; a second group of 3 does not
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(Video)).scalar_one() == 3


def test_the_last_seed_of_a_group_must_be_a_seed(store):
    _, sessions, _, service = store
    with pytest.raises(InvalidRequestError) as err:
        service.create(ME, prompt="a heron", **SMALL, extras={"n": 2, "seed": 2**63 - 1})
    assert err.value.param == "seed"
    assert rows(sessions) == []


def test_a_field_the_request_does_not_take_is_refused_by_the_service_too(store):
    _, sessions, _, service = store
    for extras, param in (({"strength": 0.5}, "strength"), ({"colour": "red"}, "colour")):
        with pytest.raises(InvalidRequestError) as err:
            service.create(ME, prompt="a heron", **SMALL, extras=extras)
        assert err.value.param == param and err.value.code == "unknown_parameter"
    with pytest.raises(InvalidRequestError) as err:
        service.storyboard(ME, shots=[Shot("a heron", "1")], model="tiny", extras={"n": 2})
    assert err.value.param == "n"
    assert rows(sessions) == []


def test_vary_makes_the_same_request_again_from_the_same_frames(store, worker):
    _, sessions, blobs, service = store
    blue = png((20, 80, 220))
    video = service.create(
        ME,
        prompt="dawn to dusk",
        model="tiny-flf2v",
        seconds="0.3",
        size="160x96",
        image=png((200, 80, 20)),
        last_frame=blue,
        extras={"seed": 4, "negative_prompt": "fog"},
    )
    finish_all(worker)
    first = service.vary(ME, video.id, n=2)
    group = [v for v in rows(sessions) if v.group_id == first.group_id]
    assert len(group) == 2 and video.id not in first.params["variations"]
    for made in group:
        assert (made.prompt, made.engine_model, made.size) == (
            "dawn to dusk",
            "tiny-flf2v",
            "160x96",
        )
        assert made.params["negative_prompt"] == "fog" and made.params["last_frame"]
        assert blobs.input_path(made.id, LAST_FRAME_SUFFIX).read_bytes() == blue.data
    assert group[1].params["seed"] == group[0].params["seed"] + 1
    finish_all(worker)
    assert all(v.status is VideoStatus.COMPLETED for v in rows(sessions))


def test_vary_a_remix_remixes_its_source_again(store, worker):
    service = store[3]
    source = service.create(ME, prompt="a pond", **SMALL)
    finish_all(worker)
    remix = service.remix(ME, source.id, prompt="the pond in autumn", strength=0.9)
    finish_all(worker)
    again = service.vary(ME, remix.id, n=2)
    assert again.remixed_from_video_id == source.id and again.prompt == "the pond in autumn"
    assert again.params["strength"] == 0.9 and again.group_id


def test_a_storyboard_or_an_unfinished_video_is_not_varied(store, worker):
    service = store[3]
    board = service.storyboard(ME, shots=[Shot("a heron", "1")], model="tiny", size="160x96")
    waiting = service.create(ME, prompt="a heron", **SMALL)
    with pytest.raises(ConflictError):
        service.vary(ME, waiting.id)
    finish_all(worker)
    with pytest.raises(InvalidRequestError):
        service.vary(ME, board.id)
    with pytest.raises(InvalidRequestError) as err:
        service.vary(ME, waiting.id, n=5)
    assert err.value.param == "n"
