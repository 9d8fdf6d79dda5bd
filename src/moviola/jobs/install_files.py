"""Where an install keeps its state on disk, and how processes agree on who is running it.

Every model being installed has a folder of its own beside the models it becomes:

    <models dir>/.installs/<id>/
        state.json   what it is doing: status, bytes done and in all, rate, error
        lock         held (flock) by the one process installing it, for as long as it runs
        cancel       present: the installer stops and discards what it fetched
        source/      a built-in model's saved folder: what its install copies from
        partial/     the folder being filled; renamed to <models dir>/<id> once whole

The state is a file rather than a table because it belongs to the files beside it: a models
folder may be shared by several data dirs, `moviola models pull` runs without the server or a
database, and a table on PostgreSQL would be shared by machines each with its own disk. The
lock tells a live install from one whose process died (a crash, a restart, a `kill -9`): the
system drops a dead process's lock, so a state that says "downloading" with nobody holding the
lock is an interrupted install, resumable from its partial files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from moviola.errors import ConflictError

Status = Literal["preparing", "downloading", "installed", "failed", "cancelled", "interrupted"]
# What a running installer writes; "interrupted" is only ever read: such a state with no holder.
RUNNING: tuple[Status, ...] = ("preparing", "downloading")
FOLDER = ".installs"


@dataclass(frozen=True)
class InstallState:
    """One model's install, as its state file says (bytes are what is on disk for it so far)."""

    model: str
    status: Status
    done_bytes: int = 0
    total_bytes: int | None = None  # None until the files' sizes are known
    rate: float | None = None  # bytes a second, over the last few seconds
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def eta_s(self) -> float | None:
        if not self.running or not self.rate or self.total_bytes is None:
            return None
        return max(0.0, self.total_bytes - self.done_bytes) / self.rate

    @property
    def percent(self) -> int:
        if not self.total_bytes:
            return 100 if self.status == "installed" else 0
        return min(100, int(100 * self.done_bytes / self.total_bytes))

    def but(self, **changes: Any) -> InstallState:
        return replace(self, updated_at=time.time(), **changes)


def install_dir(models_dir: Path, model_id: str) -> Path:
    return Path(models_dir) / FOLDER / model_id


def read_state(models_dir: Path, model_id: str) -> InstallState | None:
    """The install's state, "interrupted" where it says running and nobody holds its lock."""
    folder = install_dir(models_dir, model_id)
    try:
        raw = json.loads((folder / "state.json").read_text())
        state = InstallState(**raw)
    except (OSError, ValueError, TypeError):
        return None  # never installed here, or a file from elsewhere: nothing to show
    if state.running and not is_held(folder):
        return replace(state, status="interrupted", rate=None)
    return state


def all_states(models_dir: Path) -> dict[str, InstallState]:
    root = Path(models_dir) / FOLDER
    try:
        names = sorted(p.name for p in root.iterdir() if p.is_dir())
    except OSError:
        return {}
    found = {name: read_state(models_dir, name) for name in names}
    return {name: state for name, state in found.items() if state is not None}


def write_state(models_dir: Path, state: InstallState) -> None:
    """Replace the state file whole (a reader sees the old one or the new one). Not fsynced:
    progress is advisory, and what says a model is installed is its folder, renamed into place."""
    folder = install_dir(models_dir, state.model)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".state.{secrets.token_hex(4)}.tmp"
    tmp.write_text(json.dumps(asdict(state)))
    os.replace(tmp, folder / "state.json")


def is_held(folder: Path) -> bool:
    """Whether a process is installing into `folder` now (holds its lock)."""
    try:
        handle = os.open(folder / "lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        # A shared lock is refused only while the installer holds its exclusive one.
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)  # also lets go of the shared lock
    return False


class Lock:
    """The exclusive lock on one install, held from `take` until `release` (or the process's
    end). The open file, not the thread, holds it: a request can take it and hand it to the
    thread that installs."""

    def __init__(self, folder: Path, handle: int):
        self.folder = folder
        self._handle: int | None = handle

    @classmethod
    def take(cls, models_dir: Path, model_id: str, wait_s: float = 1.0) -> Lock:
        folder = install_dir(models_dir, model_id)
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return cls(folder, handle)
            except BlockingIOError:
                # A reader's shared lock lasts microseconds; an installer's lasts the install.
                if time.monotonic() > deadline:
                    os.close(handle)
                    raise ConflictError(
                        f"{model_id} is being installed already (by this server or by "
                        "`moviola models pull`)",
                        param="model",
                    ) from None
                time.sleep(0.05)

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None


def request_cancel(models_dir: Path, model_id: str) -> None:
    folder = install_dir(models_dir, model_id)
    if folder.is_dir():
        (folder / "cancel").touch()


def cancel_requested(folder: Path) -> bool:
    return (folder / "cancel").exists()


def clear_cancel(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (folder / "cancel").unlink()


def files_size(folder: Path) -> int:
    """Bytes of every file under `folder` (a link counts as what it points to: the Hugging Face
    cache's snapshots are links to its blobs)."""
    total = 0
    for path in _files(folder):
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def _files(folder: Path) -> Iterator[Path]:
    for root, _, names in os.walk(folder):
        for name in names:
            yield Path(root) / name
