"""Where an install's bytes come from: the Hugging Face Hub, or a built-in test model's code.

Both fill a `partial/` folder, resuming what an earlier try left there, and tell a `Meter` of
every byte that lands:

- `HubSource`: `snapshot_download` into the folder (`local_dir`), which keeps every file it
  finished: a later run fetches only the others. A file cut short starts again: since
  huggingface_hub 2 each process downloads into a file of its own, which a later run cannot go
  on from (so what a killed run left half written is deleted). Its sizes come first from a dry
  run (what each file weighs and which are here already); its bytes from the `tqdm_class`
  hook, on the bar that counts the bytes of every file.
- `BuiltInSource`: a test model is built in code. Its folder is saved once (`save_tiny`) into
  `source/`, then copied into `partial/` in small chunks, each counted as a download's are:
  the whole flow (sizes, the disk check, progress, resuming, cancelling) runs offline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from moviola.engine.catalogue import ModelSpec
from moviola.errors import MoviolaError
from moviola.jobs.install_files import files_size

COPY_CHUNK = 16 * 1024  # small: a test model is a few hundred KB, and its bar should move


class InstallCancelled(Exception):
    """Raised inside a fetch (from the byte hook) when the install is to stop."""


class Meter:
    """Counts bytes as they land (from any number of download threads), keeps to a byte rate
    when one is set, and stops the fetch when `stop()` says so (checked at every count)."""

    def __init__(self, done: int, *, max_rate: float = 0, stop: Callable[[], bool] = lambda: False):
        self.done = done
        self._fetched = 0  # this run's: what the rate limit applies to
        self._began = time.monotonic()
        self._max_rate = max_rate
        self._stop = stop
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            self._fetched += n
            fetched = self._fetched
        if self._stop():
            raise InstallCancelled()
        if self._max_rate > 0:
            # Sleep off any lead over the rate: the fetch waits here, between chunks.
            ahead = fetched / self._max_rate - (time.monotonic() - self._began)
            if ahead > 0:
                time.sleep(ahead)


@dataclass(frozen=True)
class Sizes:
    total: int  # bytes of the whole model
    here: int  # of which already in partial/ (or known to be resumed there)


class Source(Protocol):
    def measure(self, work: Path) -> Sizes:
        """The sizes, before anything is fetched (a built-in model is saved here)."""
        ...

    def fetch(self, work: Path, meter: Meter) -> None:
        """Fill `work / "partial"` completely, counting every byte on `meter`."""
        ...


def source_for(spec: ModelSpec) -> Source:
    return BuiltInSource(spec) if spec.repo_id is None else HubSource(spec.repo_id)


class BuiltInSource:
    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def measure(self, work: Path) -> Sizes:
        source = self._saved(work)
        partial = work / "partial"
        here = 0
        for path in _files(source):
            copy = partial / path.relative_to(source)
            if copy.is_file():
                here += min(copy.stat().st_size, path.stat().st_size)
        return Sizes(files_size(source), here)

    def fetch(self, work: Path, meter: Meter) -> None:
        source, partial = work / "source", work / "partial"
        for path in _files(source):
            _copy_resuming(path, partial / path.relative_to(source), meter)

    def _saved(self, work: Path) -> Path:
        """The model's folder, saved once: a resumed install copies from the very same bytes."""
        from moviola.engine.tiny import save_tiny

        source = work / "source"
        if source.is_dir():
            return source
        saving = work / "source.saving"
        shutil.rmtree(saving, ignore_errors=True)  # an earlier save cut short
        _quiet_saving()
        save_tiny(self.spec, saving)
        os.replace(saving, source)
        return source


def _quiet_saving() -> None:
    """Saving draws the libraries' own progress bars ("Writing model shards"): the install's
    bar is the one to read."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def _copy_resuming(path: Path, copy: Path, meter: Meter) -> None:
    """Copy `path` to `copy`, going on from the bytes `copy` holds already."""
    size = path.stat().st_size
    copy.parent.mkdir(parents=True, exist_ok=True)
    have = copy.stat().st_size if copy.is_file() else 0
    if have > size:  # not a prefix of this file: start again
        copy.unlink()
        meter.add(-have)  # counted as here when measured; it is not
        have = 0
    with open(path, "rb") as src, open(copy, "ab") as dst:
        src.seek(have)
        while chunk := src.read(COPY_CHUNK):
            dst.write(chunk)
            dst.flush()
            meter.add(len(chunk))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


class HubSource:
    def __init__(self, repo_id: str):
        self.repo_id = repo_id

    def measure(self, work: Path) -> Sizes:
        from huggingface_hub import snapshot_download

        try:
            files: Any = snapshot_download(
                self.repo_id, local_dir=work / "partial", dry_run=True, tqdm_class=_hook_class()
            )
        except Exception as err:  # offline, unknown repo, gated, no network: said in one line
            raise self._failed(err) from err
        total = sum(f.file_size or 0 for f in files)
        # Files cut short are fetched again from where they stopped: the hook counts those
        # bytes as they are found (its `initial`), so they are not "here" yet.
        here = sum(f.file_size or 0 for f in files if not f.will_download)
        return Sizes(total, here)

    def fetch(self, work: Path, meter: Meter) -> None:
        from huggingface_hub import snapshot_download

        _drop_cut_files(work / "partial")
        try:
            snapshot_download(
                self.repo_id, local_dir=work / "partial", tqdm_class=_hook_class(meter)
            )
        except InstallCancelled:
            raise
        except Exception as err:
            raise self._failed(err) from err

    def _failed(self, err: Exception) -> MoviolaError:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return MoviolaError(f"could not fetch {self.repo_id}: {reason}", code="download_failed")


def _drop_cut_files(partial: Path) -> None:
    """Delete the files a killed download left half written: `huggingface_hub` writes each file
    to a name of its own process's, so no later run can go on from one."""
    for cut in (partial / ".cache" / "huggingface" / "download").rglob("*.incomplete"):
        cut.unlink(missing_ok=True)


def _hook_class(meter: Meter | None = None) -> type:
    """A `tqdm_class` for `snapshot_download` that shows nothing itself and reports the bytes of
    its byte bar (counted as they arrive, a resumed file's bytes on disk included) to `meter`."""
    from huggingface_hub.utils import tqdm as hub_tqdm

    class Bytes(hub_tqdm):
        def __init__(self, *args: Any, **kwargs: Any):
            # The snapshot's own bar is named so; the transfer and file-count bars are not it.
            self._counts = kwargs.get("name") == "huggingface_hub.snapshot_download"
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if self._counts and n and meter is not None:
                meter.add(int(n))
            return super().update(n)

    return Bytes


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
