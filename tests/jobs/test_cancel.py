"""Cancel is not delete: a cancelled job stays as a record of its request, which retries."""

import io
import threading
import time

import pytest
from PIL import Image
from sqlalchemy import select

from moviola.errors import ConflictError, NotFoundError
from moviola.jobs.service import Caller, Upload
from moviola.store.models import AuditEvent, Video, WebhookEvent

pytestmark = pytest.mark.timeout(120)

ME = Caller()


def row(sessions, video_id) -> Video:
    with sessions() as session:
        return session.get(Video, video_id)


def events(sessions, video_id) -> list[str]:
    with sessions() as session:
        found = session.execute(select(WebhookEvent.type).where(WebhookEvent.video_id == video_id))
        return list(found.scalars())


def png() -> Upload:
    buffer = io.BytesIO()
    Image.new("RGB", (160, 96), (30, 140, 90)).save(buffer, "PNG")
    return Upload(buffer.getvalue(), "first.png")


def test_a_cancelled_queued_job_keeps_its_request_and_retries_as_a_new_video(store, worker):
    _, sessions, blobs, service = store
    asked = service.create(
        ME,
        prompt="a lantern on a lake",
        model="tiny",
        seconds="1",
        size="160x96",
        image=png(),
        extras={"seed": 41, "negative_prompt": "blur", "num_inference_steps": 3},
    )

    cancelled = service.cancel(ME, asked.id)

    # Still there, readable, with everything it was asked with: failed, code `cancelled`.
    assert (cancelled.status, cancelled.error_code) == ("failed", "cancelled")
    assert cancelled.stage == "cancelled" and cancelled.deleted_at is None
    assert cancelled.prompt == "a lantern on a lake"
    assert cancelled.params["negative_prompt"] == "blur" and cancelled.params["seed"] == 41
    assert (blobs.folder(asked.id) / "input.img").is_file()  # the image, kept to retry
    assert not worker.run_one()  # never picked up
    assert events(sessions, asked.id) == ["video.failed"]  # a client waiting for it hears

    again = service.retry(ME, asked.id)

    assert again.id != asked.id
    assert (again.prompt, again.size, again.seconds) == ("a lantern on a lake", "160x96", "1")
    assert again.params == {**cancelled.params}  # seed included: the same request
    assert worker.run_one()
    done = row(sessions, again.id)
    assert done.status == "completed" and done.result["seed"] == 41
    assert row(sessions, asked.id).status == "failed"  # the record stays as it was
    with sessions() as session:
        actions = session.execute(
            select(AuditEvent.action).where(AuditEvent.video_id == asked.id)
        ).scalars()
        assert list(actions) == ["create", "cancel"]


def test_a_running_job_cancelled_stops_within_a_step_and_stays_as_a_record(store, worker):
    _, sessions, blobs, service = store
    job = service.create(
        ME,
        prompt="a slow heron",
        model="tiny",
        seconds="1",
        size="160x96",
        extras={"num_inference_steps": 500},
    )
    thread = threading.Thread(target=worker.run_one)
    thread.start()
    deadline = time.monotonic() + 60
    while row(sessions, job.id).stage != "denoising":
        assert time.monotonic() < deadline, "never started denoising"
        time.sleep(0.02)

    asked = service.cancel(ME, job.id)
    assert asked.status == "in_progress" and asked.cancel_requested  # its worker stops it
    with pytest.raises(ConflictError, match="being cancelled"):
        service.cancel(ME, job.id)
    thread.join(30)

    stopped = row(sessions, job.id)
    assert (stopped.status, stopped.error_code) == ("failed", "cancelled")
    assert stopped.lease_owner is None
    assert stopped.error_message == "cancelled while it was being made"
    assert service.get(ME, job.id).prompt == "a slow heron"  # not deleted
    assert not (blobs.folder(job.id) / "w1").exists()  # the attempt's files went
    assert events(sessions, job.id) == ["video.failed"]


def test_only_a_waiting_or_running_job_is_cancelled(store, worker):
    _, _, _, service = store
    video = service.create(ME, prompt="done already", model="tiny", seconds="1", size="160x96")
    assert worker.run_one()
    with pytest.raises(ConflictError, match="completed"):
        service.cancel(ME, video.id)
    with pytest.raises(ConflictError, match="only a failed or cancelled one"):
        service.retry(ME, video.id)
    with pytest.raises(NotFoundError):  # another key's is as absent as one that never was
        service.cancel(Caller("key_other"), video.id)
