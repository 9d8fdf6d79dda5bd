"""A worker in this process: jobs from the queue to files on disk and a completed row."""

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from moviola import media
from moviola.errors import InvalidRequestError
from moviola.jobs import worker as worker_module
from moviola.jobs.service import Caller, Upload
from moviola.jobs.worker import Worker
from moviola.store.models import Video, WebhookEvent, new_id

pytestmark = pytest.mark.timeout(120)

ME = Caller()


def submit(service, **extras):
    return service.create(
        ME, prompt="a heron", model="tiny", seconds="1", size="160x96", extras=extras
    )


def row(sessions, job_id):
    with sessions() as session:
        return session.get(Video, job_id)


def wait_for(predicate, timeout=60.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_job_renders_to_a_completed_row_with_its_files(store, worker):
    _, sessions, blobs, service = store
    job_id = submit(service, seed=3).id
    assert worker.run_one()
    job = row(sessions, job_id)
    assert (job.status, job.progress, job.stage, job.attempts) == ("completed", 100, "done", 1)
    assert job.lease_owner is None and job.error_code is None
    assert set(job.files) == {"video", "thumbnail", "spritesheet"}
    for variant, entry in job.files.items():
        path = blobs.path(job_id, variant, attempt="w1")  # this attempt's own folder
        assert entry["path"] == str(path)
        assert entry["bytes"] == path.stat().st_size
        assert entry["sha256"] == media.sha256_file(path)
    info = media.probe(blobs.path(job_id, "video", attempt="w1"))
    assert (info.width, info.height) == (160, 96)
    assert job.result["seed"] == 3 and job.result["worker"] == "w1"
    with sessions() as session:
        kinds = session.execute(select(WebhookEvent.type).where(WebhookEvent.video_id == job_id))
        assert list(kinds.scalars()) == ["video.completed"]
    assert not worker.run_one()  # the queue is empty


def test_a_request_that_can_never_succeed_fails_without_retry(store, worker):
    _, sessions, _, _ = store
    job_id = new_id("video")
    with sessions.begin() as session:  # its source was deleted after it was accepted
        session.add(
            Video(
                id=job_id,
                seq=time.time_ns(),
                kind="remix",
                model="tiny",
                engine_model="tiny",
                prompt="again",
                seconds="1",
                size="160x96",
                params={},
                remixed_from_video_id="video_gone",
                max_attempts=3,
            )
        )
    assert worker.run_one()
    job = row(sessions, job_id)
    assert (job.status, job.attempts, job.error_code) == ("failed", 1, "source_deleted")
    assert "video_gone" in job.error_message
    assert not worker.run_one()


def test_a_job_deleted_mid_render_stops_within_a_step_and_keeps_only_its_inputs(store, worker):
    _, sessions, blobs, service = store
    # With a first frame to animate, so that its folder already holds a file.
    image = Upload(_png(160, 96), "first.png")
    job_id = service.create(
        ME,
        prompt="a heron",
        model="tiny",
        seconds="1",
        size="160x96",
        image=image,
        extras={"num_inference_steps": 500},
    ).id
    thread = threading.Thread(target=worker.run_one)
    thread.start()
    wait_for(lambda: row(sessions, job_id).stage == "denoising", what="denoising")
    assert blobs.folder(job_id).is_dir()
    service.delete(ME, job_id)
    deleted = time.monotonic()
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - deleted < 5  # within a step (and a heartbeat), not 500 steps
    # Deleted means in the trash, restorable: the attempt's files go, the upload it was made
    # from stays (to retry it); purging it later removes the folder.
    assert [p.name for p in blobs.folder(job_id).iterdir()] == ["input.img"]
    job = row(sessions, job_id)
    assert (job.status, job.error_code, job.lease_owner) == ("failed", "cancelled", None)
    with sessions() as session:  # nobody waits for a deleted video: no webhook
        events = session.execute(select(WebhookEvent).where(WebhookEvent.video_id == job_id))
        assert not list(events.scalars())


def test_an_exception_while_rendering_is_retried(store, worker, monkeypatch):
    _, sessions, _, service = store
    job_id = submit(service).id

    def out_of_memory(*_args, **_kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(worker_module, "render", out_of_memory)
    assert worker.run_one()
    job = row(sessions, job_id)
    assert (job.status, job.attempts, job.lease_owner) == ("queued", 1, None)

    monkeypatch.undo()
    assert worker.run_one()
    job = row(sessions, job_id)
    assert (job.status, job.attempts) == ("completed", 2)


def test_stopping_hands_the_job_back_without_using_an_attempt(store, worker):
    _, sessions, blobs, service = store
    job_id = submit(service, num_inference_steps=500).id
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    wait_for(lambda: row(sessions, job_id).stage == "denoising", what="denoising")
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    job = row(sessions, job_id)
    assert (job.status, job.attempts, job.lease_owner, job.progress) == ("queued", 0, None, 0)
    assert not blobs.path(job_id, "video", attempt="w1").exists()


def _png(width, height):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_lease_is_renewed_while_a_long_step_reports_nothing(store, monkeypatch):
    from moviola.jobs import queue

    _, sessions, _, service = store
    monkeypatch.setattr(queue, "LEASE_S", 0.6)
    job_id = submit(service).id
    job = queue.claim(sessions, "w", lease_s=0.6)
    with worker_module._LeaseKeeper(sessions, job.id, "w"):
        time.sleep(1.5)  # a step longer than the lease, with no progress reported
        assert queue.recover(sessions) == []
        assert row(sessions, job_id).lease_owner == "w"
    time.sleep(0.8)
    assert queue.recover(sessions) == [job_id]  # once nobody renews it, the lease runs out


def test_a_worker_that_lost_its_job_never_touches_the_new_holders_files(store, worker, engine):
    """A finishes after its lease was taken over and B completed: A's clean-up must leave B's
    files, which the completed row points to, in place."""
    from moviola.jobs import queue

    settings, sessions, blobs, service = store
    job_id = submit(service).id
    late = queue.claim(sessions, "w1")  # A holds the job …
    queue.recover(sessions, everything=True)  # … loses it …
    other = Worker(settings, sessions, blobs, name="w2", device="cpu")
    other.engine = engine
    assert other.run_one()  # … and B renders and completes it
    worker.process(late)  # A renders too; complete() is refused; A cleans up its own attempt
    job = row(sessions, job_id)
    assert job.status == "completed" and job.result["worker"] == "w2"
    for entry in job.files.values():
        assert Path(entry["path"]).is_file()
    assert not blobs.attempt_folder(job_id, "w1").exists()


def test_a_remix_whose_source_was_deleted_fails_clearly_and_shows_no_server_path(store, worker):
    settings, sessions, _, service = store
    source = submit(service).id
    assert worker.run_one()
    remix = service.remix(ME, source, prompt="again").id
    service.delete(ME, source)
    assert worker.run_one()
    job = row(sessions, remix)
    assert (job.status, job.error_code) == ("failed", "source_deleted")
    assert "was deleted" in job.error_message
    assert str(settings.data_dir) not in job.error_message


def test_a_source_deleted_while_its_remix_renders_fails_the_remix_in_one_attempt(
    store, worker, monkeypatch
):
    settings, sessions, _, service = store
    source = submit(service).id
    assert worker.run_one()
    remix = service.remix(ME, source, prompt="again").id
    generate = worker.engine.generate

    def delete_the_source_meanwhile(*args, **kwargs):
        result = generate(*args, **kwargs)
        service.delete(ME, source)
        return result

    monkeypatch.setattr(worker.engine, "generate", delete_the_source_meanwhile)
    assert worker.run_one()
    job = row(sessions, remix)
    assert (job.status, job.attempts, job.error_code) == ("failed", 1, "source_deleted")
    assert "was deleted before this remix finished" in job.error_message
    assert not (settings.data_dir / "blobs" / remix / worker.name).exists()


def test_an_upload_too_large_to_decode_is_refused_before_anything_is_written(store):
    import numpy as np

    settings, sessions, _, service = store
    media.write_mp4(np.zeros((9, 96, 160, 3), np.uint8), settings.data_dir / "c.mp4", fps=8)
    clip = (settings.data_dir / "c.mp4").read_bytes()
    service.settings = settings.model_copy(update={"max_decode_bytes": 9 * 96 * 160 * 3 - 1})
    with pytest.raises(InvalidRequestError, match="too large"):
        service.edit(ME, prompt="a", upload=Upload(clip, "c.mp4"), model="tiny")
    with sessions() as session:
        assert session.execute(select(Video)).first() is None


def test_a_worker_takes_no_job_while_the_disk_is_below_its_reserve(store, worker, caplog):
    settings, sessions, _, service = store
    queued = submit(service).id
    worker.settings = settings.model_copy(update={"min_free_disk_bytes": 1 << 62})
    assert not worker.run_one()
    assert not worker.run_one()
    assert row(sessions, queued).status == "queued"
    warnings = [r for r in caplog.records if "no job starts until space is freed" in r.message]
    assert len(warnings) == 1  # said once, not at every poll

    worker.settings = settings  # space freed
    assert worker.run_one()
    assert row(sessions, queued).status == "completed"
