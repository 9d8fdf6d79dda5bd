"""A real PostgreSQL and a real Ray cluster on loopback, for the scale-out tests.

PostgreSQL runs from the Debian package's binaries (`/usr/lib/postgresql/*/bin`) in a temporary
folder; it refuses to run as root, so under root it runs as `nobody`. Ray is `ray start --head`
bound to 127.0.0.1 with a few logical CPUs, its logs kept in its own temporary folder. Both are
started once per session and stopped at its end, every process they started with them, even
after a failing test. Each test gets a database of its own.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text

RAY = str(Path(sys.executable).parent / "ray")
NAMESPACE = "moviola-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not start: {log.read_text()[-3000:]}")


def _stop_tree(process: subprocess.Popen) -> None:
    """Stop a process and everything it started (Ray's workers leave its process group)."""
    try:
        parent = psutil.Process(process.pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    process.wait(10)


class Postgres:
    def __init__(self, root: Path):
        matches = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not matches:
            raise RuntimeError("PostgreSQL's server binaries are not installed")
        self.bin = Path(matches[-1]).parent
        self.root = root
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        # PostgreSQL refuses to run as root: drop to an unprivileged user for it.
        self.user = pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    def _as_user(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid}

    def start(self) -> Postgres:
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        subprocess.run(
            [self.bin / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.root,
            **self._as_user(),
        )
        log = self.root / "postgres.log"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    *(self.bin / "postgres", "-D", data, "-p", str(self.port)),
                    *("-h", "127.0.0.1", "-k", str(self.root), "-c", "fsync=off"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
                **self._as_user(),
            )
        _wait_for_port(self.port, self.process, "PostgreSQL", log)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        deadline = time.monotonic() + 30
        while True:  # the server may still be starting up
            try:
                with engine.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # a "smart" shutdown, then immediate
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RayCluster:
    def __init__(self, root: Path, cpus: int = 4, port: int | None = None):
        self.root = root
        self.cpus = cpus
        self.port = port or _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RayCluster:
        log = self.root / "ray-start.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    *(RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1"),
                    *("--port", str(self.port), "--num-cpus", str(self.cpus), "--num-gpus", "0"),
                    *("--include-dashboard=false", "--disable-usage-stats"),
                    *("--temp-dir", str(self.root)),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        _wait_for_port(self.port, self.process, "Ray", log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop_tree(self.process)


@pytest.fixture(scope="session")
def postgres():
    # A short path: PostgreSQL's and Ray's socket paths must stay under about 100 characters.
    root = Path(tempfile.mkdtemp(prefix="mvpg"))
    root.chmod(0o755)  # its unprivileged user must reach the data folder inside
    server = Postgres(root / "pg")
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database_url(postgres, request) -> str:
    """A fresh database on the session's PostgreSQL for this test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:40].lower()
    return postgres.create_database(f"{name}_{os.urandom(3).hex()}")


@pytest.fixture(scope="session")
def ray_cluster():
    root = Path(tempfile.mkdtemp(prefix="mvray"))
    cluster = RayCluster(root)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_ray_cluster():
    """Ray clusters of a test's own (to stop and start again), stopped at its end:
    `make_ray_cluster(port=None)`."""
    started = []

    def make(port: int | None = None) -> RayCluster:
        root = Path(tempfile.mkdtemp(prefix="mvray"))
        cluster = RayCluster(root, cpus=2, port=port)
        started.append(cluster)
        return cluster.start()

    yield make
    for cluster in started:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_client(ray_cluster):
    """This test process as a Ray driver, to look at (and kill) the actors as an operator would."""
    import logging

    import ray

    ray.init(
        address=ray_cluster.address,
        namespace=NAMESPACE,
        logging_level=logging.ERROR,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def cluster_env(database_url, ray_cluster) -> dict[str, str]:
    """Settings for a `moviola serve` replica on this PostgreSQL and Ray cluster: two CPU
    actors, sharing the session's namespace (so their processes are started once)."""
    return {
        "MOVIOLA_DATABASE_URL": database_url,
        "MOVIOLA_EXECUTOR": "ray",
        "MOVIOLA_RAY_ADDRESS": ray_cluster.address,
        "MOVIOLA_RAY_NAMESPACE": NAMESPACE,
        "MOVIOLA_RAY_ACTORS": "2",
        "MOVIOLA_RAY_GPUS_PER_ACTOR": "0",
        "MOVIOLA_RAY_CPUS_PER_ACTOR": "1",
    }
