"""Worker processes under a supervisor: real processes, real signals, one SQLite file."""

import itertools
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from moviola.config import Settings
from moviola.jobs import queue
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


@pytest.fixture
def own_supervisor():
    """Start a supervisor of its own on `settings`; stopped at the end of the test."""
    started = []

    def start(settings):
        started.append(Supervisor(settings))
        started[-1].start()
        return started[-1]

    yield start
    for supervisor in started:
        supervisor.stop()


def supervisor_lines(caplog, pattern):
    return [
        r for r in caplog.records if r.name == "moviola.supervisor" and re.search(pattern, r.msg)
    ]


def test_a_worker_that_dies_at_start_is_restarted_ever_more_slowly(
    tmp_path, own_supervisor, caplog
):
    missing = tmp_path / "missing.pem"  # every worker dies reading it, as it starts
    settings = Settings(data_dir=tmp_path, device="cpu", c2pa_cert=missing, c2pa_key=missing)
    caplog.set_level(logging.INFO, logger="moviola.supervisor")
    supervisor = own_supervisor(settings)
    deaths = wait_for(
        lambda: len(found := supervisor_lines(caplog, "restarting it in")) >= 3 and found,
        what="three deaths",
    )
    supervisor.stop()
    starts = supervisor_lines(caplog, "started")

    delays = [float(re.search(r"in ([\d.]+) s$", r.getMessage())[1]) for r in deaths]
    assert delays[0] > 0 and delays == sorted(delays) and delays[-1] > delays[0]
    for death in deaths:  # one line each, saying how it died, no traceback
        line = death.getMessage()
        assert "exited with code" in line and "\n" not in line and not death.exc_info
    assert len(deaths) <= len(starts) <= len(deaths) + 1
    for death, delay, start in zip(deaths, delays, starts[1:], strict=False):
        assert start.created - death.created >= delay - 0.05  # it waited before each start


def test_a_job_goes_back_to_the_queue_even_when_handing_it_back_fails_at_first(
    tmp_path, own_supervisor, caplog, monkeypatch
):
    settings = Settings(data_dir=tmp_path, device="cpu", max_attempts=3)
    supervisor = own_supervisor(settings)
    sessions = db.sessions(db.connect(settings.db_url))
    job_id = submit(settings, sessions, extras=LONG)
    wait_for(lambda: rendering(sessions, job_id), what="rendering")
    [worker] = supervisor.status()

    tries = []
    release_worker = queue.release_worker

    def disk_full_at_first(*args, **kwargs):
        tries.append(time.monotonic())
        if len(tries) <= 3:
            cause = sqlite3.OperationalError("database or disk is full")
            raise OperationalError("UPDATE videos …", {}, cause)
        return release_worker(*args, **kwargs)

    monkeypatch.setattr(queue, "release_worker", disk_full_at_first)
    os.kill(worker.pid, signal.SIGKILL)
    wait_for(lambda: row(sessions, job_id).status == "queued", timeout=30, what="the hand-back")

    job = row(sessions, job_id)
    assert (job.attempts, job.lease_owner) == (1, None)  # the crash cost it an attempt
    assert len(tries) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    assert min(gaps) > 0.4 and gaps[-1] > gaps[0] + 1  # never at once, and ever less often
    failures = supervisor_lines(caplog, "failed: ")
    assert len(failures) == 3 and all("disk is full" in f.getMessage() for f in failures)
    assert [bool(f.exc_info) for f in failures] == [True, False, False]  # one traceback
    wait_for(lambda: supervisor.status()[0].alive, timeout=30, what="a new worker")


def test_a_worker_crashing_again_logs_one_line_not_its_traceback(tmp_path):
    settings = Settings(data_dir=tmp_path)
    engine = db.connect(settings.db_url)
    db.migrate(engine)
    with engine.begin() as connection:  # a database no worker can use: every one crashes
        connection.execute(text("DROP TABLE videos"))
    engine.dispose()

    def crash(*flags):
        return subprocess.run(
            [sys.executable, "-m", "moviola", "worker", "--name", "w", "--device", "cpu", *flags],
            env={**os.environ, "MOVIOLA_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    first, again = crash(), crash("--crash-loop")
    assert first.returncode == again.returncode == 1
    assert "Traceback" in first.stderr and "no such table: videos" in first.stderr
    assert "Traceback" not in again.stderr and "no such table: videos" in again.stderr
