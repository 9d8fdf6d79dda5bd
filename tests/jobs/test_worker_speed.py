"""A worker's start: its speed settings checked, and compiled models warmed before any job."""

import logging

import pytest

from moviola.config import Settings
from moviola.engine.attention import AttentionSettingError
from moviola.jobs.worker import Worker
from moviola.store import db
from moviola.store.blobs import Blobs


def worker(tmp_path, **settings):
    config = Settings(data_dir=tmp_path, **settings)
    engine = db.connect(config.db_url)
    db.migrate(engine)
    return Worker(config, db.sessions(engine), Blobs(config.blobs_path), name="w1", device="cpu")


def test_an_unusable_attention_backend_stops_the_worker_at_start(tmp_path):
    with pytest.raises(AttentionSettingError, match="needs a CUDA GPU"):
        worker(tmp_path, attention_backend="_flash_3").start()


def test_the_warm_up_is_skipped_with_a_line_when_the_default_model_is_absent(tmp_path, caplog):
    job_worker = worker(tmp_path, compile="true", default_model="wan2.1-t2v-1.3b")
    with caplog.at_level(logging.INFO, logger="moviola.worker"):
        job_worker.start()
    [line] = [r.getMessage() for r in caplog.records if "warm-up" in r.getMessage()]
    assert "skipped" in line and "wan2.1-t2v-1.3b" in line


def test_nothing_is_warmed_where_nothing_is_compiled(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="moviola.worker"):
        worker(tmp_path).start()  # compile=auto: off on a CPU
    assert not [r for r in caplog.records if r.name == "moviola.worker"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_compiling_worker_warms_the_default_model_and_logs_the_time(tmp_path, caplog):
    job_worker = worker(tmp_path, compile="true", default_model="tiny")
    with caplog.at_level(logging.INFO, logger="moviola.worker"):
        job_worker.start()
    [line] = [r.getMessage() for r in caplog.records if "warmed" in r.getMessage()]
    assert line.startswith("w1: compiled and warmed tiny in ") and line.endswith(" s")
    assert job_worker.engine.pipelines.loaded() == ["tiny"]  # and it stays loaded for jobs
