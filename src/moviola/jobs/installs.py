"""Installing and removing models: the one home for it, used by the Studio and by
`moviola models pull`.

An install fills `<models dir>/.installs/<id>/partial/` from its source (the Hugging Face Hub,
or a built-in test model's code; see `moviola.jobs.install_sources`), then renames it to
`<models dir>/<id>/`, where the engine looks first. So a model is installed exactly when its
folder is there whole: a half-done install is never in that place. Before any byte is fetched
the model's size is checked against the free space at the models folder, keeping
`min_free_disk_bytes` free (below that, workers start no job). Progress (bytes done and in all,
the rate over the last seconds, so an ETA) is written to the install's state file several
times a second, where every page and process reads it (`moviola.jobs.install_files`).

The server runs an install in a thread of its own: fetching weights is waiting on the network
and the disk, which a thread does without holding anything up, and it ends with the server,
leaving an interrupted install to resume. `moviola models pull` runs the same install in its
own process, in the foreground. An interrupted or failed install resumes from what it fetched
(a Hub model from the files it finished; a test model from its last byte); a cancelled one is
discarded.

A model in the Hugging Face cache (fetched by other programs, or by an older `moviola models
pull`) counts as installed too, but Moviola never deletes from that cache: other programs
share it.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from moviola.config import Settings
from moviola.engine.catalogue import ModelSpec, catalogue
from moviola.engine.loading import find_weights
from moviola.errors import (
    ConflictError,
    InsufficientStorageError,
    MoviolaError,
    NotFoundError,
    is_disk_full,
)
from moviola.jobs.install_files import (
    InstallState,
    Lock,
    all_states,
    cancel_requested,
    clear_cancel,
    files_size,
    install_dir,
    is_held,
    read_state,
    request_cancel,
    write_state,
)
from moviola.jobs.install_sources import InstallCancelled, Meter, discard, source_for
from moviola.store.models import Video, VideoStatus

log = logging.getLogger(__name__)

MARKER = "model_index.json"  # what makes a folder a diffusers pipeline's
WRITE_EVERY_S = 0.25
RATE_WINDOW_S = 5.0

__all__ = [
    "InstallState",
    "all_states",
    "cancel",
    "describe",
    "install",
    "is_installed",
    "read_state",
    "remove",
    "start",
]


# --- What is installed ---------------------------------------------------------------------


def local_folder(spec: ModelSpec, settings: Settings) -> Path | None:
    """`<models dir>/<id>/` when an install put the model there (or one was copied there)."""
    folder = settings.models_path / spec.id
    return folder if (folder / MARKER).is_file() else None


def weights_folder(spec: ModelSpec, settings: Settings) -> Path | None:
    """Where the model's weights are on this machine (its folder, or the Hugging Face cache's
    snapshot), or None: not here, or a test model run from its code."""
    try:
        return find_weights(spec, settings.models_path)
    except Exception:  # WeightsNotFoundError, or an unreadable folder
        return None


def test_models_offered(settings: Settings) -> bool:
    """Whether this server is set up with the test models (an alias names one, as for trying
    Moviola with `MOVIOLA_MODEL_ALIASES=sora-2=tiny`, and as the tests run it)."""
    known = catalogue()
    return any(
        target in known and known[target].is_test_model
        for target in settings.model_aliases.values()
    )


def is_installed(spec: ModelSpec, settings: Settings) -> bool:
    """Whether creators can pick the model here. A test model is built in code and needs no
    weights, but it makes noise: it counts once installed (saved under the models folder), or
    on a server set up with the test models; any other model once its weights are here whole."""
    if spec.repo_id is None:
        return local_folder(spec, settings) is not None or test_models_offered(settings)
    return weights_folder(spec, settings) is not None


def size_on_disk(spec: ModelSpec, settings: Settings) -> int | None:
    folder = weights_folder(spec, settings)
    return files_size(folder) if folder is not None else None


# --- Installing ----------------------------------------------------------------------------


Listener = Callable[[InstallState], None]


def install(spec: ModelSpec, settings: Settings, on_progress: Listener | None = None) -> Path:
    """Install `spec` here and now, in this thread (`moviola models pull`); `on_progress` is
    told of each state written. An installed model's folder is returned as it is."""
    done = weights_folder(spec, settings)
    if done is not None:
        return done
    lock = Lock.take(settings.models_path, spec.id)
    return _Install(spec, settings, lock, on_progress).run()


def start(spec: ModelSpec, settings: Settings) -> InstallState:
    """Begin installing `spec` in a thread of this process, and return its first state. A
    model being installed (here or by another process) or installed already is a conflict."""
    if weights_folder(spec, settings) is not None:
        raise ConflictError(f"{spec.id} is installed already", param="model")
    lock = Lock.take(settings.models_path, spec.id, wait_s=0.2)
    job = _Install(spec, settings, lock)
    state = job.begin()
    threading.Thread(target=job.run_logged, name=f"install-{spec.id}", daemon=True).start()
    return state


def cancel(model_id: str, settings: Settings) -> None:
    """Stop an install (its installer discards what it fetched), or discard an interrupted or
    failed one's files."""
    state = read_state(settings.models_path, model_id)
    if state is None or state.status in ("installed", "cancelled"):
        raise ConflictError(f"{model_id} is not being installed", param="model")
    if state.running:
        request_cancel(settings.models_path, model_id)
        return
    lock = Lock.take(settings.models_path, model_id)  # nobody may resume it meanwhile
    try:
        work = install_dir(settings.models_path, model_id)
        discard(work / "partial")
        discard(work / "source")
        write_state(settings.models_path, state.but(status="cancelled", done_bytes=0, rate=None))
    finally:
        lock.release()


class _Install:
    """One run of one install, holding its lock from start to end."""

    def __init__(
        self, spec: ModelSpec, settings: Settings, lock: Lock, on_progress: Listener | None = None
    ):
        self.spec, self.settings, self.lock = spec, settings, lock
        self.models = settings.models_path
        self.work = install_dir(self.models, spec.id)
        self.on_progress = on_progress
        self.state = InstallState(spec.id, "preparing")
        self._stopping = False

    def begin(self) -> InstallState:
        clear_cancel(self.work)
        target = self.models / self.spec.id
        if target.exists() and not (target / MARKER).is_file():
            self.lock.release()
            raise ConflictError(
                f"{target} is there but holds no {MARKER}: it is not a whole model; move it "
                f"away to install {self.spec.id}",
                param="model",
            )
        self._set(self.state)
        return self.state

    def run_logged(self) -> None:
        try:
            self.run(begun=True)
        except MoviolaError as err:
            log.warning("installing %s failed: %s", self.spec.id, err.message)
        except Exception:
            log.exception("installing %s failed", self.spec.id)

    def run(self, *, begun: bool = False) -> Path:
        try:
            if not begun:
                self.begin()
            return self._run()
        except InstallCancelled:
            discard(self.work / "partial")
            discard(self.work / "source")
            self._set(self.state.but(status="cancelled", done_bytes=0, rate=None))
            raise MoviolaError(
                f"installing {self.spec.id} was cancelled", code="cancelled"
            ) from None
        except MoviolaError as err:
            self._set(self.state.but(status="failed", error=err.message, rate=None))
            raise
        except Exception as err:
            reason = _one_line(err)
            if is_disk_full(err):
                failure: MoviolaError = InsufficientStorageError(
                    f"the disk of {self.models} filled up while installing {self.spec.id}: {reason}"
                )
            else:
                failure = MoviolaError(
                    f"installing {self.spec.id} failed: {reason}", code="install_failed"
                )
            self._set(self.state.but(status="failed", error=failure.message, rate=None))
            raise failure from err
        finally:
            self.lock.release()

    def _run(self) -> Path:
        source = source_for(self.spec)
        sizes = source.measure(self.work)
        self._check_room(sizes.total - sizes.here)
        self._set(
            self.state.but(status="downloading", done_bytes=sizes.here, total_bytes=sizes.total)
        )
        if cancel_requested(self.work):  # asked for while measuring
            raise InstallCancelled()
        meter = Meter(
            sizes.here,
            max_rate=self.settings.install_max_bytes_per_s,
            stop=lambda: self._stopping,
        )
        fetched = threading.Event()
        ticker = threading.Thread(
            target=self._tick, args=(meter, fetched), name=f"install-{self.spec.id}-progress"
        )
        ticker.start()
        try:
            source.fetch(self.work, meter)
        finally:
            fetched.set()
            ticker.join()
        partial = self.work / "partial"
        if not (partial / MARKER).is_file():
            raise MoviolaError(
                f"{self.spec.id}'s files hold no {MARKER}: not a diffusers model",
                code="install_failed",
            )
        target = self.models / self.spec.id
        os.rename(partial, target)  # whole, in one step: never half there
        discard(self.work / "source")
        total = files_size(target)
        self._set(
            self.state.but(status="installed", done_bytes=total, total_bytes=total, rate=None)
        )
        return target

    def _tick(self, meter: Meter, fetched: threading.Event) -> None:
        """While the bytes arrive: the state written a few times a second, with the rate over
        the last seconds, and a cancel asked for (by any process) noticed. A timer rather than
        each chunk: a download's chunks may be seconds apart."""
        samples = collections.deque([(time.monotonic(), meter.done)])
        while not fetched.wait(WRITE_EVERY_S):
            now, done = time.monotonic(), meter.done
            samples.append((now, done))
            while now - samples[0][0] > RATE_WINDOW_S:
                samples.popleft()
            first_at, first_done = samples[0]
            rate = (done - first_done) / (now - first_at) if now - first_at > 0.5 else None
            if (done, rate) != (self.state.done_bytes, self.state.rate):
                self._set(self.state.but(done_bytes=done, rate=rate))
            self._stopping = cancel_requested(self.work)

    def _check_room(self, needed: int) -> None:
        free = shutil.disk_usage(self.work).free
        keep = self.settings.min_free_disk_bytes
        if needed + keep > free:
            raise InsufficientStorageError(
                f"not enough disk space to install {self.spec.id}: it needs {size_text(needed)} "
                f"more, and {size_text(keep)} is kept free for videos (min_free_disk_bytes); "
                f"{self.models} has {size_text(free)} free"
            )

    def _set(self, state: InstallState) -> None:
        self.state = state
        write_state(self.models, state)
        if self.on_progress is not None:
            self.on_progress(state)


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --- Removing ------------------------------------------------------------------------------


def remove(spec: ModelSpec, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Delete the model's folder under the models folder, unless a job that may load it is
    queued or running, or it is being installed. A model found only in the Hugging Face cache
    is left there (other programs share that cache): the refusal says how to remove it."""
    work = install_dir(settings.models_path, spec.id)
    if is_held(work):
        raise ConflictError(f"{spec.id} is being installed: cancel that first", param="model")
    waiting = jobs_using(sessions, spec)
    if waiting:
        raise ConflictError(
            f"{spec.id} is in use: {waiting} job{'s' if waiting > 1 else ''} queued or in "
            "progress may load it; remove it once they are done (or cancel them)",
            param="model",
        )
    folder = local_folder(spec, settings)
    if folder is None:
        cached = weights_folder(spec, settings)
        if cached is not None and spec.repo_id:
            raise ConflictError(
                f"{spec.id} is in the Hugging Face cache ({cached}), which other programs "
                f"share: Moviola leaves it there; remove it with `hf cache rm model/"
                f"{spec.repo_id}`",
                param="model",
            )
        raise NotFoundError(f"{spec.id} is not installed in {settings.models_path}")
    # Out of the engine's sight in one step, then deleted at leisure.
    work.mkdir(parents=True, exist_ok=True)
    os.rename(folder, work / f"removing-{time.monotonic_ns()}")
    discard(work)


def jobs_using(sessions: sessionmaker[Session], spec: ModelSpec) -> int:
    """Jobs queued or running that may load `spec`: of the model itself, or of a model it
    continues (its `chain_model`) or renders references for (its `reference_model`)."""
    names = {spec.id} | {
        other.id
        for other in catalogue().values()
        if spec.id in (other.chain_model, other.reference_model)
    }
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Video)
                .where(
                    Video.status.in_((VideoStatus.QUEUED, VideoStatus.IN_PROGRESS)),
                    Video.engine_model.in_(sorted(names)),
                )
            )
            or 0
        )


# --- Words -----------------------------------------------------------------------------------


def size_text(n: float | None) -> str:
    """Bytes as people read them: 383 KB, 9.8 GB (powers of 1000, as disks are sold)."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def describe(state: InstallState) -> str:
    """One line for a progress bar, the same in the Studio and the CLI."""
    if state.status == "preparing":
        return "preparing: measuring the files and the free space"
    if state.status == "installed":
        return f"installed: {size_text(state.done_bytes)}"
    if state.status == "cancelled":
        return "cancelled"
    if state.status == "failed":
        return f"failed: {state.error}"
    if state.status == "interrupted" and state.total_bytes is None:
        return "interrupted while preparing: resume to start again"
    parts = [f"{size_text(state.done_bytes)} of {size_text(state.total_bytes)}"]
    if state.status == "interrupted":
        return parts[0] + " · interrupted: resume to go on from there"
    if state.rate:
        parts.append(f"{size_text(state.rate)}/s")
    if state.eta_s is not None:
        parts.append(eta_text(state.eta_s))
    return " · ".join(parts)
