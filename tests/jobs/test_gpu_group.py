"""Workers of several devices under the supervisor: real processes, real signals.

Each worker here is a group of two CPU ranks (`device = "cpu"`, `gpus_per_worker = 2`): the
processes, pipes, collectives and failure handling of a worker of two GPUs, on gloo.
"""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import psutil
import pytest
from sqlalchemy import update

from moviola.config import Settings
from moviola.engine import GenerationRequest, Placement, Stage
from moviola.errors import InvalidRequestError
from moviola.jobs import supervisor as supervision
from moviola.jobs.gpu_group import GroupEngine, group_devices
from moviola.jobs.service import Caller, VideoService
from moviola.jobs.supervisor import Supervisor, worker_devices, worker_groups
from moviola.store import db
from moviola.store.blobs import Blobs
from moviola.store.models import Video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ME = Caller()
LONG = {"num_inference_steps": 500}  # far longer than any test waits: it is always stopped
SIZE = "128x128"  # 80 tokens a clip, which two CPU ranks share evenly


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("group")
    return Settings(data_dir=data_dir, workers=1, device="cpu", gpus_per_worker=2, max_attempts=3)


@pytest.fixture(scope="module")
def supervisor(settings):
    supervisor = Supervisor(settings)
    supervisor.start()
    yield supervisor
    supervisor.stop()


@pytest.fixture(scope="module")
def sessions(settings, supervisor):  # the supervisor has brought the schema up to date
    return db.sessions(db.connect(settings.db_url))


def submit(settings, sessions, extras=None):
    service = VideoService(settings, sessions, Blobs(settings.blobs_path))
    return service.create(
        ME, prompt="a heron", model="tiny", seconds="1", size=SIZE, extras=extras
    ).id


def row(sessions, job_id):
    with sessions() as session:
        return session.get(Video, job_id)


def wait_for(predicate, timeout=90.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return found


def rendering(sessions, job_id):
    job = row(sessions, job_id)
    return job.status == "in_progress" and job.stage == "denoising"


def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def ranks_of(worker):
    """The processes of a worker's other ranks."""
    children = psutil.Process(worker.pid).children()
    return [p.pid for p in children if "moviola.jobs.gpu_group" in p.cmdline()]


def the_worker(supervisor):
    """The worker, once its group has started."""
    return wait_for(
        lambda: (w := supervisor.status()[0]).alive and ranks_of(w) and w, what="the group"
    )


def test_a_job_renders_on_a_worker_of_two_ranks(supervisor, settings, sessions):
    worker = the_worker(supervisor)
    assert worker.device == "cpu,cpu"
    assert len(ranks_of(worker)) == 1  # rank 0 is the worker itself
    job_id = submit(settings, sessions)
    wait_for(lambda: row(sessions, job_id).status == "completed", what="the job")
    job = row(sessions, job_id)
    assert (job.attempts, job.progress) == (1, 100)
    assert job.result["worker"].startswith("worker-0-")


def test_a_cancel_stops_every_rank_and_the_group_takes_the_next_job(supervisor, settings, sessions):
    worker = the_worker(supervisor)
    ranks, restarts = ranks_of(worker), supervisor.restarts
    job_id = submit(settings, sessions, extras=LONG)
    wait_for(lambda: rendering(sessions, job_id), what="rendering")
    VideoService(settings, sessions, Blobs(settings.blobs_path)).delete(ME, job_id)
    wait_for(lambda: row(sessions, job_id).lease_owner is None, timeout=30, what="the stop")
    assert row(sessions, job_id).error_code == "cancelled"

    # Had rank 1 not stopped with rank 0, it would still be in its 500 steps, waiting in an
    # exchange rank 0 never joins, and the next job could not start.
    next_id = submit(settings, sessions)
    wait_for(lambda: row(sessions, next_id).status == "completed", what="the next job")
    after = supervisor.status()[0]
    assert (after.pid, ranks_of(after), supervisor.restarts) == (worker.pid, ranks, restarts)


def test_a_rank_that_dies_takes_the_group_down_and_its_job_runs_again(
    supervisor, settings, sessions
):
    worker = the_worker(supervisor)
    [rank_1] = ranks_of(worker)
    restarts = supervisor.restarts
    job_id = submit(settings, sessions, extras=LONG)
    wait_for(lambda: rendering(sessions, job_id), what="rendering")
    quick_retry(sessions, job_id)

    os.kill(rank_1, signal.SIGKILL)
    wait_for(lambda: not running(worker.pid), timeout=10, what="rank 0 to go down")
    new = wait_for(
        lambda: supervisor.restarts == restarts + 1 and the_worker(supervisor),
        what="a new group",
    )
    assert new.pid != worker.pid and rank_1 not in ranks_of(new)
    wait_for(lambda: row(sessions, job_id).status == "completed", what="the second attempt")
    job = row(sessions, job_id)
    assert (job.attempts, job.error_code, job.progress) == (2, None, 100)


def test_when_rank_0_dies_its_other_ranks_go_too(supervisor, settings, sessions):
    worker = the_worker(supervisor)
    [rank_1] = ranks_of(worker)
    restarts = supervisor.restarts
    job_id = submit(settings, sessions, extras=LONG)
    wait_for(lambda: rendering(sessions, job_id), what="rendering")
    quick_retry(sessions, job_id)

    os.kill(worker.pid, signal.SIGKILL)
    wait_for(lambda: not running(rank_1), timeout=5, what="rank 1 to go")
    wait_for(lambda: supervisor.restarts == restarts + 1, timeout=10, what="a new group")
    wait_for(lambda: row(sessions, job_id).status == "completed", what="the second attempt")
    assert row(sessions, job_id).attempts == 2


def test_a_failure_of_rank_0_while_rendering_stops_every_rank_and_is_raised(engine):
    group = GroupEngine(["cpu", "cpu"], placement=Placement("cpu"), name="here")
    request = GenerationRequest("a heron", model="tiny", size=(128, 128), seconds=1, seed=3)
    try:

        def database_away(progress):
            if progress.stage is Stage.DENOISING and progress.step >= 1:
                raise OSError("the database is away")

        # Raised at once, rank 0 would leave rank 1 in the next step's exchange for ever (and
        # the group would go down, taking this process with it).
        with pytest.raises(OSError, match="the database is away"):
            group.generate(replace(request, steps=4), on_progress=database_away)
        again = group.generate(request)
    finally:
        group.close()
    assert np.array_equal(again.frames, engine.generate(request).frames)


def quick_retry(sessions, job_id):
    """The running attempt has read its 500 steps: make the next attempt quick."""
    with sessions.begin() as session:
        session.execute(
            update(Video).where(Video.id == job_id).values(params={"num_inference_steps": 2})
        )


# --- which devices each worker gets ---------------------------------------------------------


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has `n` GPUs (it has none): only the counting is pretended."""

    def have(n):
        monkeypatch.setattr(supervision, "_gpu_count", lambda: n)

    return have


def test_each_worker_gets_consecutive_gpus(tmp_path, gpus):
    gpus(4)
    settings = Settings(data_dir=tmp_path, workers=2, gpus_per_worker=2)
    assert worker_groups(settings) == [["cuda:0", "cuda:1"], ["cuda:2", "cuda:3"]]
    assert worker_devices(settings) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    one_each = settings.model_copy(update={"gpus_per_worker": 1})
    assert worker_groups(one_each) == [["cuda:0"], ["cuda:1"]]  # as before: one job per GPU


@pytest.mark.parametrize(
    ("count", "per", "device", "says"),
    [
        (3, 2, "auto", "does not divide this machine's 3 GPUs"),
        (1, 2, "auto", "needs 2 GPUs and this machine has 1 GPU"),
        (0, 2, "auto", "needs 2 GPUs and this machine has no GPU"),
        (4, 2, "cuda:1", "takes --device auto, cuda or cpu"),
    ],
)
def test_gpus_that_do_not_make_groups_are_refused(tmp_path, gpus, count, per, device, says):
    gpus(count)
    settings = Settings(data_dir=tmp_path, gpus_per_worker=per, device=device)
    with pytest.raises(InvalidRequestError, match=says):
        worker_groups(settings)
    with pytest.raises(InvalidRequestError, match=says):
        Supervisor(settings)  # before any worker starts


def test_a_worker_started_by_hand_takes_its_group_from_its_options():
    assert group_devices("cuda:2,cuda:3", 2) == ["cuda:2", "cuda:3"]
    assert group_devices("cuda:2,cuda:3", 1) == ["cuda:2", "cuda:3"]  # the list says it
    assert group_devices("cpu", 3) == ["cpu", "cpu", "cpu"]
    assert group_devices("cuda:1", 1) == ["cuda:1"]
    with pytest.raises(InvalidRequestError, match="names 2 devices, and --gpus-per-worker is 3"):
        group_devices("cuda:0,cuda:1", 3)
    with pytest.raises(InvalidRequestError, match="distinct GPUs"):
        group_devices("cuda:0,cuda:0", 2)
    with pytest.raises(InvalidRequestError, match="needs 2 GPUs and this machine has 0"):
        group_devices("auto", 2)


def test_serve_refuses_at_start_when_the_gpus_do_not_make_groups(tmp_path):
    served = subprocess.run(
        [sys.executable, "-m", "moviola", "serve", "--gpus-per-worker", "2"],
        env={**os.environ, "MOVIOLA_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2
    assert "--gpus-per-worker 2 needs 2 GPUs and this machine has no GPU" in served.stderr
