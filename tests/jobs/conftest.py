"""A store (database, blobs, service) in a temporary data dir, and a worker on it."""

import pytest

from moviola.config import Settings
from moviola.jobs.service import VideoService
from moviola.jobs.worker import Worker
from moviola.store import db
from moviola.store.blobs import Blobs


@pytest.fixture
def store(tmp_path):
    settings = Settings(data_dir=tmp_path, max_attempts=3)
    engine = db.connect(settings.db_url)
    db.migrate(engine)
    sessions = db.sessions(engine)
    blobs = Blobs(settings.blobs_path)
    return settings, sessions, blobs, VideoService(settings, sessions, blobs)


@pytest.fixture
def worker(store, engine):
    settings, sessions, blobs, _ = store
    job_worker = Worker(settings, sessions, blobs, name="w1", device="cpu")
    job_worker.engine = engine  # the session's engine: tiny pipelines already built
    return job_worker
