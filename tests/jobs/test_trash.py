"""The trash: a deleted video is restorable, exactly, for `trash_days`; then it is purged."""

import time

import pytest
from sqlalchemy import update

from moviola import media
from moviola.config import Settings
from moviola.errors import NotFoundError
from moviola.jobs.service import Caller, VideoService
from moviola.jobs.sweeper import Sweeper
from moviola.store.models import Video

pytestmark = pytest.mark.timeout(120)

ME = Caller()
DAY_S = 24 * 3600


def row(sessions, video_id) -> Video:
    with sessions() as session:
        return session.get(Video, video_id)


def hashes(video: Video) -> dict[str, str]:
    """Each file's SHA-256 as read from the disk now."""
    return {name: media.sha256_file(entry["path"]) for name, entry in video.files.items()}


def made(service, worker, prompt="a glass whale") -> Video:
    video = service.create(ME, prompt=prompt, model="tiny", seconds="1", size="160x96")
    assert worker.run_one()
    return service.get(ME, video.id)


def test_delete_then_restore_brings_the_video_back_exactly(store, worker):
    settings, sessions, _, service = store
    original = made(service, worker)
    remix = service.remix(ME, original.id, prompt="a glass whale at night")  # queued
    before = hashes(original)

    service.delete(ME, original.id)

    with pytest.raises(NotFoundError):  # gone for every reader at once
        service.get(ME, original.id)
    assert original.id not in [v.id for v in service.list(ME)[0]]
    assert [v.id for v in service.trash.page(None).videos] == [original.id]
    assert hashes(row(sessions, original.id)) == before  # its files are kept meanwhile
    Sweeper(settings, sessions, service.blobs).sweep()  # and the sweeper leaves them be

    restored = service.trash.restore(None, original.id)

    assert restored.deleted_at is None
    back = service.get(ME, original.id)
    assert (back.status, back.prompt, back.files) == ("completed", original.prompt, original.files)
    assert hashes(back) == before
    assert service.content(ME, original.id, "video")[0].is_file()
    assert service.remix(ME, original.id, prompt="once more").remixed_from_video_id == (
        original.id
    )  # a source again, as before
    assert service.get(ME, remix.id).remixed_from_video_id == original.id
    assert service.trash.page(None).videos == []
    with pytest.raises(NotFoundError):  # restored once; a second restore finds nothing
        service.trash.restore(None, original.id)


def test_a_video_in_the_trash_longer_than_trash_days_is_purged(store, worker):
    settings, sessions, blobs, service = store
    old = made(service, worker, "an old lighthouse")
    recent = made(service, worker, "a new lighthouse")
    never_ran = service.create(ME, prompt="queued", model="tiny", seconds="1", size="160x96")
    for video in (old, recent, never_ran):
        service.delete(ME, video.id)
    eight_days_ago = time.time() - 8 * DAY_S
    with sessions.begin() as session:
        session.execute(
            update(Video)
            .where(Video.id.in_([old.id, never_ran.id]))
            .values(deleted_at=eight_days_ago)
        )

    assert Settings(data_dir=settings.data_dir).trash_days == 7  # the default
    Sweeper(settings, sessions, blobs).sweep()

    assert row(sessions, old.id).purged_at is not None
    assert row(sessions, never_ran.id).purged_at is not None  # no folder, purged all the same
    assert not blobs.folder(old.id).exists()
    assert hashes(row(sessions, recent.id))  # a day short of it: kept, restorable
    assert [v.id for v in service.trash.page(None).videos] == [recent.id]
    with pytest.raises(NotFoundError):
        service.trash.restore(None, old.id)
    assert service.trash.count(None) == 1


def test_delete_forever_removes_the_files_at_once(store, worker):
    _, sessions, blobs, service = store
    video = made(service, worker)
    service.delete(ME, video.id)

    service.trash.purge(None, video.id)

    assert not blobs.folder(video.id).exists()
    assert row(sessions, video.id).purged_at is not None  # the row stays, for ids and cursors
    with pytest.raises(NotFoundError):
        service.trash.get(None, video.id)
    with pytest.raises(NotFoundError):  # nor is it anyone else's to purge
        service.trash.purge("key_other", video.id)


def test_the_trash_is_its_owners_only(store, worker):
    settings, sessions, blobs, _ = store
    theirs = VideoService(settings, sessions, blobs)
    caller = Caller("key_them")
    video = theirs.create(caller, prompt="theirs", model="tiny", seconds="1", size="160x96")
    theirs.delete(caller, video.id)
    assert theirs.trash.page(None).videos == []
    with pytest.raises(NotFoundError):
        theirs.trash.restore(None, video.id)
    assert theirs.trash.restore("key_them", video.id).id == video.id
