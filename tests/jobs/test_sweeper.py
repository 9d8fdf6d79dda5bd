"""The sweeper: expiry after the retention period, files of deleted videos, and what crashes
left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from moviola.config import Settings
from moviola.errors import ConflictError, NotFoundError
from moviola.jobs import queue
from moviola.jobs.service import Caller, VideoService
from moviola.jobs.sweeper import ORPHAN_AFTER_S, Sweeper
from moviola.render.frame_check import BLOCKED
from moviola.store import db
from moviola.store.blobs import Blobs
from moviola.store.models import Character, Video, new_id


@pytest.fixture
def sessions(tmp_path):
    engine = db.connect(db.sqlite_url(tmp_path))
    db.migrate(engine)
    yield db.sessions(engine)
    engine.dispose()


@pytest.fixture
def blobs(tmp_path):
    return Blobs(tmp_path / "blobs")


def sweeper(tmp_path, sessions, blobs, retention_hours=1.0):
    settings = Settings(data_dir=tmp_path, retention_hours=retention_hours)
    return Sweeper(settings, sessions, blobs)


def new_job(sessions, blobs) -> str:
    """A queued job with an uploaded input in its folder, as the API leaves one."""
    video_id = new_id("video")
    folder = blobs.folder(video_id)
    folder.mkdir(parents=True)
    (folder / "input.img").write_bytes(b"reference")
    with sessions.begin() as session:
        session.add(
            Video(
                id=video_id,
                seq=time.time_ns(),
                model="tiny",
                engine_model="tiny",
                seconds="1",
                size="64x64",
                input_path=str(folder / "input.img"),
            )
        )
    return video_id


def finished_video(sessions, blobs) -> str:
    """A job rendered and completed through the queue, with its three files on disk."""
    video_id = new_job(sessions, blobs)
    assert queue.claim(sessions, "w1").id == video_id
    files = {}
    for variant in ("video", "thumbnail", "spritesheet"):
        path = blobs.path(video_id, variant)
        path.write_bytes(b"x" * 10)
        files[variant] = {"path": str(path), "bytes": 10, "sha256": "0" * 64}
    assert queue.complete(sessions, video_id, "w1", files=files, result={})
    return video_id


def row(sessions, video_id) -> Video:
    with sessions() as session:
        return session.get(Video, video_id)


def set_row(sessions, video_id, **values):
    with sessions.begin() as session:
        session.execute(update(Video).where(Video.id == video_id).values(**values))


def test_a_completed_video_gets_its_expiry_and_keeps_its_files_until_then(
    tmp_path, sessions, blobs
):
    video_id = finished_video(sessions, blobs)
    assert sweeper(tmp_path, sessions, blobs).sweep() == 0
    video = row(sessions, video_id)
    assert video.expires_at == pytest.approx(video.completed_at + 3600)
    assert blobs.path(video_id, "video").is_file()


def test_an_expired_video_loses_its_files_but_keeps_its_row(tmp_path, sessions, blobs):
    video_id = finished_video(sessions, blobs)
    kept = finished_video(sessions, blobs)
    set_row(sessions, video_id, expires_at=time.time() - 1)
    settings = Settings(data_dir=tmp_path, retention_hours=1)
    service = VideoService(settings, sessions, blobs)

    assert Sweeper(settings, sessions, blobs).sweep() == 1

    assert not blobs.folder(video_id).exists()
    assert blobs.path(kept, "video").is_file()
    video = service.get(Caller(), video_id)  # retrieve still works
    assert video.status == "completed"
    assert all("expired_at" in entry for entry in video.files.values())
    with pytest.raises(NotFoundError, match="expired"):
        service.content(Caller(), video_id, "video")
    assert service.content(Caller(), kept, "video")[0].is_file()
    with pytest.raises(ConflictError, match="expired"):  # refused now, not failed later
        service.remix(Caller(), video_id, prompt="again")


def test_sweeping_twice_is_harmless(tmp_path, sessions, blobs):
    video_id = finished_video(sessions, blobs)
    set_row(sessions, video_id, expires_at=time.time() - 1)
    sweep = sweeper(tmp_path, sessions, blobs)
    assert sweep.sweep() == 1
    before = row(sessions, video_id)
    assert sweep.sweep() == 0
    after = row(sessions, video_id)
    assert (after.files, after.expires_at, after.status) == (
        before.files,
        before.expires_at,
        before.status,
    )


def test_without_retention_nothing_expires(tmp_path, sessions, blobs):
    video_id = finished_video(sessions, blobs)
    assert sweeper(tmp_path, sessions, blobs, retention_hours=0).sweep() == 0
    assert row(sessions, video_id).expires_at is None
    assert blobs.path(video_id, "video").is_file()


def test_deleted_videos_keep_their_folders_until_purged_unless_their_job_is_running(
    tmp_path, sessions, blobs
):
    # A deleted video now waits in the trash with its files, restorable: only a purged one's
    # folder goes. Purged rows whose files are still there are what a crash right after
    # "delete forever" marked the row leaves.
    completed = finished_video(sessions, blobs)
    queued = new_job(sessions, blobs)
    running = new_job(sessions, blobs)
    set_row(sessions, running, status="in_progress", lease_owner="w2")  # its worker cleans up
    for video_id in (completed, queued, running):
        set_row(sessions, video_id, deleted_at=time.time(), cancel_requested=True)
    untouched = new_job(sessions, blobs)
    stray = blobs.folder(new_id("video"))  # no row (yet): an upload being created
    stray.mkdir()

    sweep = sweeper(tmp_path, sessions, blobs, retention_hours=0)
    assert sweep.sweep() == 0  # in the trash: kept
    assert all(blobs.folder(v).is_dir() for v in (completed, queued, running))

    for video_id in (completed, queued, running):
        set_row(sessions, video_id, purged_at=time.time())
    assert sweep.sweep() == 2
    assert not blobs.folder(completed).exists()
    assert not blobs.folder(queued).exists()
    assert blobs.folder(running).is_dir()
    assert blobs.folder(untouched).is_dir() and stray.is_dir()
    assert row(sessions, completed).deleted_at is not None  # rows stay

    set_row(sessions, running, status="failed", lease_owner=None)  # its worker died
    assert sweep.sweep() == 1
    assert not blobs.folder(running).exists()
    assert sweep.sweep() == 0


def test_the_thread_sweeps_on_its_own(tmp_path, sessions, blobs):
    video_id = finished_video(sessions, blobs)
    set_row(sessions, video_id, expires_at=time.time() - 1)
    settings = Settings(data_dir=tmp_path, retention_hours=1)
    sweep = Sweeper(settings, sessions, blobs, interval_s=0.05)
    sweep.start()
    try:
        deadline = time.time() + 10
        while blobs.folder(video_id).exists() and time.time() < deadline:
            time.sleep(0.02)
    finally:
        sweep.stop()
    assert not blobs.folder(video_id).exists()


def backdate(*paths):
    """Make `paths` look untouched for longer than an orphan may wait."""
    then = time.time() - ORPHAN_AFTER_S - 60
    for path in paths:
        os.utime(path, (then, then))


def rowless_folder(blobs, *names, old=True):
    """A video folder with the files `names` in it and no row, as a crash leaves one."""
    folder = blobs.folder(new_id("video"))
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    if old:
        backdate(*folder.iterdir(), folder)
    return folder


def attempt(blobs, video_id, owner) -> Path:
    """A render attempt's folder with a whole video in it, as a killed worker leaves one."""
    folder = blobs.attempt_folder(video_id, owner)
    folder.mkdir(parents=True)
    for variant in ("video", "thumbnail", "spritesheet"):
        blobs.path(video_id, variant, attempt=owner).write_bytes(b"x" * 10)
    return folder


def test_a_folder_without_a_row_goes_once_nothing_in_it_changed_for_a_while(
    tmp_path, sessions, blobs
):
    crashed = rowless_folder(blobs, "input.png")
    cut_short = rowless_folder(blobs, ".input.png.1a2b3c4d.tmp.png")  # mid-write
    storyboard = rowless_folder(blobs, "input.shot1.png", "input.shot2.jpg")
    empty = rowless_folder(blobs)
    being_created = rowless_folder(blobs, "input.png", old=False)  # its row is on its way
    rewritten = rowless_folder(blobs, "input.png")
    (rewritten / "input.png").write_bytes(b"again")
    # No request leaves these: a database that does not know them must not cost their files.
    rendered = rowless_folder(blobs, "input.png", "video.mp4")
    with_attempt = rowless_folder(blobs, "input.png")
    (with_attempt / "w1").mkdir()
    backdate(with_attempt)
    character = blobs.root / new_id("char")
    character.mkdir()
    (character / "character.mp4").write_bytes(b"x")
    backdate(character / "character.mp4", character)
    queued = new_job(sessions, blobs)
    backdate(blobs.folder(queued) / "input.img", blobs.folder(queued))

    assert sweeper(tmp_path, sessions, blobs, retention_hours=0).sweep() == 5

    # A character's folder without a row is one whose creation crashed before its row.
    gone = {crashed, cut_short, storyboard, empty, character}
    assert not any(folder.exists() for folder in gone)
    assert set(blobs.root.iterdir()) == {
        being_created,
        rewritten,
        rendered,
        with_attempt,
        blobs.folder(queued),
    }
    assert (blobs.folder(queued) / "input.img").is_file()


def test_a_characters_folder_goes_only_without_a_row_and_with_nothing_else_in_it(
    tmp_path, sessions, blobs
):
    def character_folder(*names: str, old: bool = True) -> Path:
        folder = blobs.root / new_id("char")
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"x")
        if old:
            backdate(*folder.iterdir(), folder)
        return folder

    crashed = character_folder("character.mp4", "reference_0.png", ".reference_1.png.1a2b.tmp.png")
    being_created = character_folder("character.mp4", old=False)
    unknown = character_folder("character.mp4", "notes.txt")  # not what creating one writes
    kept = character_folder("character.mp4", "reference_0.png")
    with sessions.begin() as session:
        session.add(
            Character(id=kept.name, owner=None, name="Ada", video_path=str(kept / "character.mp4"))
        )

    assert sweeper(tmp_path, sessions, blobs, retention_hours=0).sweep() == 1
    assert set(blobs.root.iterdir()) == {being_created, unknown, kept}
    assert not crashed.exists()


def test_attempts_that_ended_lose_their_folders_and_nothing_else(tmp_path, sessions, blobs):
    completed = new_job(sessions, blobs)
    killed_before = attempt(blobs, completed, "w0")  # a full duplicate of the video
    assert queue.claim(sessions, "w1").id == completed
    attempt(blobs, completed, "w1")
    files = {
        variant: {"path": str(blobs.path(completed, variant, attempt="w1")), "bytes": 10}
        for variant in ("video", "thumbnail", "spritesheet")
    }
    assert queue.complete(sessions, completed, "w1", files=files, result={})

    running = new_job(sessions, blobs)
    killed_earlier = attempt(blobs, running, "w2")
    rendering_now = attempt(blobs, running, "w3")
    set_row(sessions, running, status="in_progress", lease_owner="w3", attempts=2)

    requeued = new_job(sessions, blobs)  # its worker died; no one has claimed it since
    killed = attempt(blobs, requeued, "w4")
    set_row(sessions, requeued, attempts=1)

    blocked = new_job(sessions, blobs)
    kept_for_admins = attempt(blobs, blocked, "w5")
    set_row(sessions, blocked, status="failed", error_code=BLOCKED)

    failed = new_job(sessions, blobs)
    failed_attempt = attempt(blobs, failed, "w6")
    set_row(sessions, failed, status="failed", error_code="generation_failed")

    sweep = sweeper(tmp_path, sessions, blobs, retention_hours=0)
    assert sweep.sweep() == 4

    assert not any(f.exists() for f in (killed_before, killed_earlier, killed, failed_attempt))
    assert all(Path(entry["path"]).is_file() for entry in row(sessions, completed).files.values())
    assert rendering_now.is_dir() and kept_for_admins.is_dir()
    for video_id in (completed, running, requeued, blocked, failed):  # uploads stay
        assert (blobs.folder(video_id) / "input.img").is_file()
    assert sweep.sweep() == 0


def test_a_pass_that_keeps_failing_logs_its_traceback_once(tmp_path, sessions, blobs, caplog):
    sweep = sweeper(tmp_path, sessions, blobs)
    failures = []

    def disk_full():
        failures.append(time.monotonic())
        raise OSError(28, "No space left on device")

    sweep.sweep = disk_full
    sweep.interval_s = 0.01
    sweep.start()
    try:
        deadline = time.monotonic() + 10
        while len(failures) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sweep.stop()
    logged = [r for r in caplog.records if "pass failed" in r.getMessage()]
    assert len(logged) >= 5 and all("No space left" in r.getMessage() for r in logged)
    assert [bool(r.exc_info) for r in logged] == [True] + [False] * (len(logged) - 1)
