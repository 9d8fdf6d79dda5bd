"""The intake service: a request is accepted whole or leaves nothing behind, and its limits hold
under simultaneous requests."""

import io
import threading

import pytest
from PIL import Image
from sqlalchemy import func, select

from moviola.config import DEFAULT_ALIASES, Settings
from moviola.engine.catalogue import Capability, get_model
from moviola.errors import InvalidRequestError, NotFoundError, TooManyRequestsError
from moviola.jobs.service import Caller, Upload, VideoService
from moviola.store import db
from moviola.store.blobs import Blobs
from moviola.store.models import AuditEvent, Video, VideoKind, VideoStatus

ME = Caller()


def png() -> Upload:
    buffer = io.BytesIO()
    Image.new("RGB", (160, 96), (200, 120, 40)).save(buffer, "PNG")
    return Upload(buffer.getvalue(), "first.png")


def create(service, **fields):
    fields = {"prompt": "a heron", "model": "tiny", "seconds": "1", "size": "160x96", **fields}
    return service.create(ME, **fields)


def count(sessions, *where) -> int:
    with sessions() as session:
        return session.execute(select(func.count()).select_from(Video).where(*where)).scalar_one()


def blob_folders(blobs) -> list[str]:
    return sorted(p.name for p in blobs.root.iterdir()) if blobs.root.is_dir() else []


def simultaneously(times: int, call, refused: type[Exception]) -> list[str]:
    """Run `call` from `times` threads released at once; "ok" or "refused" for each."""
    start = threading.Barrier(times)
    outcomes: list[str] = []

    def one() -> None:
        start.wait()
        try:
            call()
            outcomes.append("ok")
        except refused:
            outcomes.append("refused")

    threads = [threading.Thread(target=one) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_a_prompt_that_is_not_valid_text_is_refused_and_nothing_is_written(store):
    _, sessions, blobs, service = store
    with pytest.raises(InvalidRequestError) as refused:
        create(service, prompt="a heron \ud800", image=png())
    assert refused.value.param == "prompt"
    assert count(sessions) == 0
    assert blob_folders(blobs) == []


def test_an_upload_is_written_only_for_a_request_that_is_queued(store, tmp_path):
    settings, sessions, blobs, _ = store
    full = VideoService(Settings(data_dir=settings.data_dir, max_queued_per_key=1), sessions, blobs)
    kept = create(full, image=png())
    with pytest.raises(TooManyRequestsError):
        create(full, image=png())
    assert blob_folders(blobs) == [kept.id]
    with sessions() as session:
        assert session.get(Video, kept.id).input_path.startswith(str(blobs.root / kept.id))


def test_the_queue_limit_holds_for_simultaneous_requests(tmp_path):
    settings = Settings(data_dir=tmp_path, max_queued_per_key=5)
    engine = db.connect(settings.db_url)
    db.migrate(engine)
    sessions = db.sessions(engine)
    service = VideoService(settings, sessions, Blobs(settings.blobs_path))
    outcomes = simultaneously(50, lambda: create(service), TooManyRequestsError)
    assert outcomes.count("ok") == 5
    assert count(sessions, Video.status == VideoStatus.QUEUED) == 5


def test_of_simultaneous_deletes_one_succeeds_and_is_audited_once(store):
    _, sessions, _, service = store
    video = create(service)
    outcomes = simultaneously(20, lambda: service.delete(ME, video.id), NotFoundError)
    assert outcomes.count("ok") == 1
    with sessions() as session:
        audited = session.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "delete", AuditEvent.video_id == video.id)
        ).scalar_one()
    assert audited == 1


def test_an_import_with_no_known_model_is_remixed_by_the_default_model(store, worker):
    settings, sessions, _, service = store
    source = create(service)
    assert worker.run_one()
    with sessions.begin() as session:
        imported = session.get(Video, source.id)
        imported.kind, imported.model, imported.engine_model = VideoKind.IMPORT, "unknown", "?"
    tiny = VideoService(
        settings.model_copy(update={"model_aliases": {"sora-2": "tiny"}}), sessions, service.blobs
    )
    remix = tiny.remix(ME, source.id, prompt="again")
    assert (remix.model, remix.engine_model) == ("sora-2", "tiny")


@pytest.mark.parametrize("alias", sorted(DEFAULT_ALIASES))
def test_both_sora_aliases_take_text_images_and_videos(alias):
    spec = get_model(DEFAULT_ALIASES[alias])
    assert set(spec.capabilities) >= {Capability.TEXT, Capability.IMAGE, Capability.VIDEO}


def test_a_remix_takes_over_only_valid_settings_of_its_source(store, worker):
    _, sessions, _, service = store
    source = create(service, extras={"negative_prompt": "fog"})
    assert worker.run_one()
    with sessions.begin() as session:  # as an import's manifest may have left them
        imported = session.get(Video, source.id)
        imported.params = {"fps": "8", "negative_prompt": 5, "shots": [{"prompt": "x"}], "seed": 1}
    remix = service.remix(ME, source.id, prompt="again")
    assert remix.params["fps"] == 8
    assert "negative_prompt" not in remix.params and "shots" not in remix.params
    assert remix.params["seed"] != 1  # a remix draws its own
