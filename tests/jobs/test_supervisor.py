"""Worker processes under a supervisor: real processes, real signals, one SQLite file."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from sqlalchemy import select, update

from moviola.config import Settings
from moviola.jobs.service import Caller, VideoService
from moviola.jobs.supervisor import Supervisor, worker_devices, worker_environment
from moviola.store import db
from moviola.store.blobs import Blobs
from moviola.store.models import Video, WebhookEvent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ME = Caller()
LONG = {"num_inference_steps": 500}  # far longer than any test waits: it is always stopped


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("supervised")


@pytest.fixture(scope="module")
def settings(data_dir):
    return Settings(data_dir=data_dir, workers=1, device="auto", max_attempts=3)


@pytest.fixture(scope="module")
def supervisor(settings):
    supervisor = Supervisor(settings)
    supervisor.start()
    yield supervisor
    supervisor.stop()


@pytest.fixture(scope="module")
def sessions(settings, supervisor):  # the supervisor has brought the schema up to date
    return db.sessions(db.connect(settings.db_url))


def service(settings, sessions, **changes):
    settings = settings.model_copy(update=changes)
    return VideoService(settings, sessions, Blobs(settings.blobs_path))


def submit(settings, sessions, extras=None, **changes):
    return (
        service(settings, sessions, **changes)
        .create(ME, prompt="a heron", model="tiny", seconds="1", size="160x96", extras=extras)
        .id
    )


def row(sessions, job_id):
    with sessions() as session:
        return session.get(Video, job_id)


def wait_for(predicate, timeout=60.0, what="the condition"):
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


def test_a_job_completes_in_a_worker_process(supervisor, settings, sessions):
    [worker] = supervisor.status()
    assert (worker.name, worker.device, worker.alive) == ("worker-0", "cpu", True)
    assert worker.pid != os.getpid()
    job_id = submit(settings, sessions)
    wait_for(lambda: row(sessions, job_id).status == "completed", what="the job")
    job = row(sessions, job_id)
    assert (job.attempts, job.progress) == (1, 100)
    assert job.result["worker"].startswith("worker-0-")  # a name of its own for each process


def test_a_killed_worker_is_replaced_and_its_job_runs_again(supervisor, settings, sessions):
    restarts = supervisor.restarts
    job_id = submit(settings, sessions, extras=LONG)
    wait_for(lambda: rendering(sessions, job_id), what="rendering")
    [before] = supervisor.status()
    assert before.current_job == job_id
    with sessions.begin() as session:  # the running attempt has read its steps: make the next quick
        session.execute(
            update(Video).where(Video.id == job_id).values(params={"num_inference_steps": 2})
        )

    os.kill(before.pid, signal.SIGKILL)
    after = wait_for(
        lambda: supervisor.restarts == restarts + 1 and supervisor.status()[0],
        timeout=10,
        what="a new worker",
    )
    assert after.pid != before.pid and after.alive and after.restarts == before.restarts + 1
    assert not running(before.pid)
    wait_for(lambda: row(sessions, job_id).status == "completed", what="the second attempt")
    job = row(sessions, job_id)
    assert (job.attempts, job.error_code, job.progress) == (2, None, 100)
    with sessions() as session:
        kinds = session.execute(select(WebhookEvent.type).where(WebhookEvent.video_id == job_id))
        assert list(kinds.scalars()) == ["video.completed"]  # exactly once


def test_a_job_whose_worker_dies_on_its_last_attempt_fails(supervisor, settings, sessions):
    job_id = submit(settings, sessions, extras=LONG, max_attempts=1)
    wait_for(lambda: rendering(sessions, job_id), what="rendering")
    restarts = supervisor.restarts
    os.kill(supervisor.status()[0].pid, signal.SIGKILL)
    wait_for(lambda: row(sessions, job_id).status == "failed", timeout=10, what="the failure")
    job = row(sessions, job_id)
    assert (job.attempts, job.error_code) == (1, "worker_lost")
    assert "SIGKILL" in job.error_message and "gave up after 1 attempts" in job.error_message
    wait_for(lambda: supervisor.restarts == restarts + 1, timeout=10, what="a new worker")


def test_stop_hands_the_job_back_and_leaves_no_process(supervisor, settings, sessions):
    job_id = submit(settings, sessions, extras=LONG)
    wait_for(lambda: rendering(sessions, job_id), what="rendering")
    pids = [worker.pid for worker in supervisor.status()]
    supervisor.stop(timeout=20)
    assert not any(running(pid) for pid in pids)
    assert not [p for p in psutil.Process().children() if "worker" in p.cmdline()]
    job = row(sessions, job_id)
    assert (job.status, job.attempts, job.lease_owner) == ("queued", 0, None)  # no attempt used
    assert [worker.alive for worker in supervisor.status()] == [False]
    with sessions.begin() as session:  # leave the queue empty for whoever shares this data dir
        session.execute(update(Video).where(Video.id == job_id).values(status="failed"))


def test_workers_exit_when_the_server_is_killed(tmp_path):
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from moviola.config import Settings\n"
            "from moviola.jobs.supervisor import Supervisor\n"
            "supervisor = Supervisor(Settings(workers=2))\n"
            "supervisor.start()\n"
            "print(*(w.pid for w in supervisor.status()), flush=True)\n"
            "time.sleep(300)\n",
        ],
        env={**os.environ, "MOVIOLA_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pids = [int(pid) for pid in server.stdout.readline().split()]
        assert len(pids) == 2 and all(running(pid) for pid in pids)
    finally:
        server.kill()
        server.wait()
    wait_for(lambda: not any(running(pid) for pid in pids), timeout=15, what="the workers to exit")


def test_a_standalone_worker_renders_and_stops_on_sigterm(tmp_path):
    settings = Settings(data_dir=tmp_path)
    engine = db.connect(settings.db_url)
    db.migrate(engine)
    sessions = db.sessions(engine)
    job_id = submit(settings, sessions)
    worker = subprocess.Popen(
        [sys.executable, "-m", "moviola", "worker", "--name", "solo", "--device", "cpu"],
        env={**os.environ, "MOVIOLA_DATA_DIR": str(tmp_path)},
    )
    try:
        wait_for(lambda: row(sessions, job_id).status == "completed", what="the job")
        assert row(sessions, job_id).result["worker"] == "solo"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
    finally:
        worker.kill()
        worker.wait()


def test_workers_get_the_servers_settings_and_a_device_each(tmp_path, monkeypatch):
    settings = Settings(
        data_dir=tmp_path,
        max_attempts=7,
        model_aliases={"sora-2": "tiny", "sora-2-pro": "tiny-ltx"},
        webhook_urls=["http://a.test/hook", "http://b.test/hook"],
        vae_tiling=False,
        workers=3,
    )
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = worker_environment(settings)
    assert env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 3))  # a share each
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings() == settings  # what a worker started with that environment reads
    assert worker_devices(settings) == ["cpu"] * 3  # no GPU here
    assert worker_devices(settings.model_copy(update={"device": "cuda:1"})) == ["cuda:1"] * 3
