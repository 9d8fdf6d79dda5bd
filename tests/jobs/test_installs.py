"""Installing models: into place whole or not at all, with progress from real bytes, the disk
checked first, cancelled cleanly, resumed after an interruption, removed unless in use; and
which model a machine is offered first."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.conftest import MOVIOLA

from moviola.config import Settings
from moviola.engine import get_model
from moviola.engine.tiny import save_tiny
from moviola.errors import ConflictError, InsufficientStorageError, MoviolaError
from moviola.jobs import installs, model_fit
from moviola.jobs.install_files import install_dir, read_state, write_state
from moviola.jobs.service import Caller

TINY = get_model("tiny")
REAL_ONLY = {"sora-2": "wan2.2-ti2v-5b", "sora-2-pro": "ltx-2"}  # no test model named


def settings_for(tmp_path: Path, **more) -> Settings:
    return Settings(data_dir=tmp_path, model_aliases=REAL_ONLY, **more)


def hashes(folder: Path) -> dict[str, tuple[int, str]]:
    """Each file's size and SHA-256, by its path in `folder`."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> dict[str, tuple[int, str]]:
    """What `tiny` saved from code holds, file by file (the same bytes every time)."""
    return hashes(save_tiny(TINY, tmp_path_factory.mktemp("saved") / "tiny"))


def test_a_test_model_installs_into_place_with_progress_in_bytes(tmp_path, tiny_files):
    settings = settings_for(tmp_path, install_max_bytes_per_s=400_000)
    assert not installs.is_installed(TINY, settings)  # no alias names it: not offered yet

    seen: list[installs.InstallState] = []
    folder = installs.install(TINY, settings, on_progress=seen.append)

    assert folder == settings.models_path / "tiny"
    assert hashes(folder) == tiny_files
    assert installs.is_installed(TINY, settings)
    total = sum(size for size, _ in tiny_files.values())
    assert [s.status for s in seen][:2] == ["preparing", "downloading"]
    assert seen[-1].status == "installed" and seen[-1].done_bytes == total
    moving = [s for s in seen if s.status == "downloading"]
    assert all(s.total_bytes == total for s in moving)
    done = [s.done_bytes for s in moving]
    assert done == sorted(done) and len(set(done)) >= 3  # it moved, in bytes, never back
    assert any(s.rate and 0 < s.rate < 1_000_000 for s in moving)  # held near its limit
    assert "KB of" in installs.describe(moving[-1])
    # Nothing is left of the install but its state, which every process reads.
    work = install_dir(settings.models_path, "tiny")
    assert not (work / "partial").exists() and not (work / "source").exists()
    assert read_state(settings.models_path, "tiny").status == "installed"
    # Installed already: the folder as it is.
    assert installs.install(TINY, settings) == folder
    with pytest.raises(ConflictError, match="installed already"):
        installs.start(TINY, settings)


def test_the_disk_is_checked_before_any_byte_is_fetched(tmp_path, tiny_files):
    keep = 10**18  # more than any disk: as a disk that is too small would be
    settings = settings_for(tmp_path, min_free_disk_bytes=keep)
    with pytest.raises(InsufficientStorageError) as refused:
        installs.install(TINY, settings)
    message = refused.value.message
    free = installs.size_text(shutil.disk_usage(settings.models_path).free)
    size = installs.size_text(sum(size for size, _ in tiny_files.values()))
    assert f"needs {size} more" in message  # what it takes …
    assert free.split()[1] in message and "free" in message  # … and what there is
    assert installs.size_text(keep) in message and "min_free_disk_bytes" in message
    state = read_state(settings.models_path, "tiny")
    assert state.status == "failed" and state.error == message
    assert not (install_dir(settings.models_path, "tiny") / "partial").exists()
    assert not installs.is_installed(TINY, settings)


def wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_an_install_in_a_thread_is_cancelled_and_discarded(tmp_path):
    settings = settings_for(tmp_path, install_max_bytes_per_s=20_000)  # about 20 s in all
    first = installs.start(TINY, settings)
    assert first.status == "preparing"
    with pytest.raises(ConflictError, match="being installed already"):
        installs.start(TINY, settings)  # one install of a model at a time
    state = wait_for(
        lambda: (s := read_state(settings.models_path, "tiny")) and s.done_bytes > 0 and s
    )
    assert state.status == "downloading"
    installs.cancel("tiny", settings)
    cancelled = wait_for(
        lambda: (s := read_state(settings.models_path, "tiny")).status == "cancelled" and s
    )
    assert cancelled.done_bytes == 0
    work = install_dir(settings.models_path, "tiny")
    assert not (work / "partial").exists() and not (work / "source").exists()
    assert not (settings.models_path / "tiny").exists()
    with pytest.raises(ConflictError, match="not being installed"):
        installs.cancel("tiny", settings)


def test_an_interrupted_install_resumes_from_its_bytes(tmp_path, tiny_files):
    """What a process killed mid-install leaves: its state saying "downloading", part of the
    files, and no lock held (the system dropped it with the process)."""
    settings = settings_for(tmp_path)
    work = install_dir(settings.models_path, "tiny")
    save_tiny(TINY, work / "source")
    biggest = max(tiny_files, key=lambda name: (work / "source" / name).stat().st_size)
    cut = (work / "source" / biggest).read_bytes()[:50_000]
    (work / "partial" / biggest).parent.mkdir(parents=True)
    (work / "partial" / biggest).write_bytes(cut)
    write_state(
        settings.models_path,
        installs.InstallState("tiny", "downloading", done_bytes=50_000),
    )
    assert read_state(settings.models_path, "tiny").status == "interrupted"
    assert not installs.is_installed(TINY, settings)  # never half there

    seen: list[installs.InstallState] = []
    folder = installs.install(TINY, settings, on_progress=seen.append)
    assert hashes(folder) == tiny_files
    assert next(s for s in seen if s.status == "downloading").done_bytes == 50_000


def test_a_folder_that_is_no_model_is_not_overwritten(tmp_path):
    settings = settings_for(tmp_path)
    stray = settings.models_path / "tiny"
    stray.mkdir(parents=True)
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(ConflictError, match="not a whole model"):
        installs.install(TINY, settings)
    assert (stray / "notes.txt").read_text() == "mine"


def test_remove_is_refused_while_a_job_may_load_the_model(store, tmp_path):
    settings, sessions, _, service = store
    installs.install(TINY, settings)
    queued = service.create(Caller(owner=None), prompt="a kite", model="tiny", seconds="1")
    with pytest.raises(ConflictError, match="1 job queued or in progress"):
        installs.remove(TINY, settings, sessions)
    assert installs.local_folder(TINY, settings) is not None

    service.delete(Caller(owner=None), queued.id)  # cancels it
    installs.remove(TINY, settings, sessions)
    assert not (settings.models_path / "tiny").exists()
    assert not install_dir(settings.models_path, "tiny").exists()
    with pytest.raises(MoviolaError, match="not installed"):
        installs.remove(TINY, settings, sessions)


def test_test_models_are_offered_when_an_alias_names_one(tmp_path):
    offered = Settings(data_dir=tmp_path, model_aliases={"sora-2": "tiny"})
    assert installs.is_installed(get_model("tiny-ltx"), offered)
    assert not installs.is_installed(get_model("wan2.2-ti2v-5b"), offered)
    assert not installs.is_installed(get_model("tiny-ltx"), settings_for(tmp_path))


@pytest.mark.parametrize(
    ("gpu_gb", "recommended"),
    [(0, "tiny"), (8, "wan2.1-t2v-1.3b"), (24, "wan2.1-t2v-14b"), (80, "wan2.2-t2v-a14b")],
)
def test_the_first_model_is_the_largest_that_fits_this_gpu_well(tmp_path, gpu_gb, recommended):
    machine = model_fit.machine_of(Settings(data_dir=tmp_path, gpu_memory_gb=gpu_gb))
    spec = model_fit.recommend(machine)
    assert spec.id == recommended
    if gpu_gb:
        need = model_fit.need(spec, machine)
        assert need.fits and f"of {gpu_gb:.1f} GB" in need.text  # the planner's placement


def test_without_a_gpu_each_model_says_what_gpu_it_needs(tmp_path):
    machine = model_fit.machine_of(Settings(data_dir=tmp_path))
    assert not machine.gpu and machine.describe().startswith("no GPU")
    need = model_fit.need(get_model("wan2.1-t2v-14b"), machine)
    assert need.fits is False and need.text.startswith("no GPU here: it needs a GPU of")
    assert model_fit.need(TINY, machine).fits


def test_progress_reads_as_one_line():
    state = installs.InstallState(
        "tiny", "downloading", done_bytes=1_500_000, total_bytes=9_800_000_000, rate=45e6
    )
    assert installs.describe(state) == "1.5 MB of 9.8 GB · 45.0 MB/s · about 4 min left"


# --- From the Hugging Face Hub ------------------------------------------------------------------
# A Hub on loopback, answering what `huggingface_hub` asks of the real one (a revision, its file
# tree, each file's headers and bytes, from an offset), so the download path runs offline.

REPO, COMMIT = "THUDM/CogVideoX-5b", "0123456789abcdef0123456789abcdef01234567"
BIG = 30 * 1024 * 1024  # three of the Hub's 10 MiB download chunks, and a bit


class FakeHub:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.asked: list[tuple[str, str, str | None]] = []  # method, path, Range
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub.answer(self, body=False)

            def do_GET(self) -> None:
                hub.answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        path = request.path.split("?")[0]
        self.asked.append((request.command, path, request.headers.get("Range")))
        if path == f"/api/models/{REPO}/revision/main":
            siblings = [{"rfilename": name} for name in self.files]
            return self.json(request, {"id": REPO, "sha": COMMIT, "siblings": siblings})
        if path == f"/api/models/{REPO}/tree/{COMMIT}":
            return self.json(request, [self.entry(name, data) for name, data in self.files.items()])
        found = re.fullmatch(rf"/{REPO}/resolve/{COMMIT}/(.+)", path)
        if found is None or found[1] not in self.files:
            request.send_response(404)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return None
        data = self.files[found[1]]
        start = int(re.match(r"bytes=(\d+)-", request.headers.get("Range") or "bytes=0-")[1])
        start = start if body else 0
        request.send_response(206 if start else 200)
        request.send_header("X-Repo-Commit", COMMIT)
        request.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        request.send_header("Content-Length", str(len(data) - start))
        request.end_headers()
        if body:
            request.wfile.write(data[start:])
        return None

    @staticmethod
    def entry(name: str, data: bytes) -> dict:
        return {
            "type": "file",
            "path": name,
            "size": len(data),
            "oid": hashlib.sha1(data).hexdigest(),
            "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134},
        }

    @staticmethod
    def json(request: BaseHTTPRequestHandler, data: object) -> None:
        raw = json.dumps(data).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        request.end_headers()
        request.wfile.write(raw)


@pytest.fixture(scope="module")
def hub():
    files = {
        "model_index.json": b'{"_class_name": "CogVideoXPipeline"}',
        "vae/config.json": b"{}",
        "transformer/diffusion_pytorch_model.safetensors": os.urandom(BIG),
    }
    running = FakeHub(files)
    yield running
    running.server.shutdown()


def pull(hub: FakeHub, data_dir: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [MOVIOLA, "models", "pull", "cogvideox-5b"],
        env={
            **os.environ,
            "MOVIOLA_DATA_DIR": str(data_dir),
            "HF_HOME": str(data_dir / "hf"),
            "HF_HUB_OFFLINE": "0",
            "HF_ENDPOINT": hub.url,
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_hub_model_killed_mid_download_resumes_from_the_files_it_finished(hub, tmp_path):
    models = tmp_path / "models"
    cut_files = models / ".installs" / "cogvideox-5b" / "partial" / ".cache" / "huggingface"
    slow = pull(hub, tmp_path, MOVIOLA_INSTALL_MAX_BYTES_PER_S=str(4 * 1024**2))
    # Its small files are done, and the big one is on its way.
    wait_for(lambda: (s := read_state(models, "cogvideox-5b")) and s.done_bytes > 10 * 1024**2)
    slow.kill()
    slow.communicate()
    cut = read_state(models, "cogvideox-5b")
    assert cut.status == "interrupted" and cut.total_bytes > BIG
    assert not (models / "cogvideox-5b").exists()  # never half there
    assert list(cut_files.rglob("*.incomplete"))  # what the kill left half written

    asked = len(hub.asked)
    done = pull(hub, tmp_path)
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    fetched = [p for m, p, _ in hub.asked[asked:] if m == "GET" and "/resolve/" in p]
    assert fetched == [f"/{REPO}/resolve/{COMMIT}/transformer/diffusion_pytorch_model.safetensors"]
    folder = models / "cogvideox-5b"
    for name, data in hub.files.items():
        assert (folder / name).read_bytes() == data
    assert not list(folder.rglob("*.incomplete"))
    assert installs.is_installed(get_model("cogvideox-5b"), settings_for(tmp_path))
    assert read_state(models, "cogvideox-5b").status == "installed"


def test_a_hub_model_too_big_for_the_disk_fetches_nothing(hub, tmp_path):
    asked = len(hub.asked)
    refused = pull(hub, tmp_path, MOVIOLA_MIN_FREE_DISK_BYTES=str(10**18))
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 1
    assert "not enough disk space to install cogvideox-5b: it needs 31.5 MB more" in err
    fetched = [p for m, p, _ in hub.asked[asked:] if m == "GET" and "/resolve/" in p]
    assert fetched == []  # sizes came from the file tree; no file was downloaded
