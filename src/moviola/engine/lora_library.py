"""The LoRA library: `<data dir>/loras/`, one safetensors file and one small record per LoRA.

    library = LoraLibrary(library_folder(settings.data_dir))
    lora = library.add(Path("watercolour.safetensors"))  # refused unless it fits a model here
    library.uses([{"name": "watercolour", "scale": 0.8}])  # what a request renders with

The file is checked before anything is written (`moviola.engine.lora_files.classify`) and then
copied in under a name of its own; the record (`<name>.json`) is written last and linked into
place only if no LoRA has that name yet, so a LoRA exists exactly when its record does and a
refused or interrupted `add` changes nothing a reader sees. Removing deletes the record first.

It lives in the engine beside the models folder it resembles: these are weights the engine
loads into its pipelines, and the records say which catalogue models they fit, which planning a
request checks. (The store, on the same layer, may not call the engine's classifier.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from moviola.engine.catalogue import ModelSpec, catalogue
from moviola.engine.lora_files import LoraFileError, base_of, classify
from moviola.engine.loras import LibraryLora, LoraUse
from moviola.errors import ConflictError, InvalidRequestError, NotFoundError

log = logging.getLogger(__name__)

FOLDER = "loras"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_ORPHAN_AGE_S = 3600.0  # a weights file no record names, older than this, is left from a crash
_CHUNK = 1 << 20


def library_folder(data_dir: Path) -> Path:
    return Path(data_dir) / FOLDER


class LoraLibrary:
    """The LoRAs in one folder, by name (unique, whatever the case)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    # --- reading -----------------------------------------------------------------------------

    def all(self) -> list[LibraryLora]:
        """Every LoRA, by name."""
        if not self.folder.is_dir():
            return []
        found = []
        for record in sorted(self.folder.glob("*.json")):
            lora = self._read(record)
            if lora is not None:
                found.append(lora)
        return sorted(found, key=lambda lora: lora.name.lower())

    def fitting(self, spec: ModelSpec) -> list[LibraryLora]:
        """The LoRAs that fit `spec`."""
        return [lora for lora in self.all() if lora.fits_model(spec)]

    def get(self, name: str) -> LibraryLora:
        """The LoRA called `name`; a `NotFoundError` otherwise."""
        record = self._record_of(name)
        lora = self._read(record) if record is not None else None
        if lora is None:
            raise NotFoundError(
                f"no LoRA named {name!r} in the library; `moviola loras list` shows them",
                param="name",
            )
        return lora

    def uses(self, chosen: Iterable[Mapping[str, Any]]) -> tuple[LoraUse, ...]:
        """A request's `loras` (`[{"name", "scale"}]`) as the library's LoRAs at those scales;
        an unknown name is an `InvalidRequestError` naming `loras`."""
        found = []
        for item in chosen:
            name = str(item.get("name"))
            try:
                lora = self.get(name)
            except NotFoundError as err:
                raise InvalidRequestError(err.message, param="loras") from None
            found.append(LoraUse(lora, float(item.get("scale", 1.0))))
        return tuple(found)

    # --- changing ----------------------------------------------------------------------------

    def add(
        self, file: Path, name: str | None = None, *, low_noise: Path | None = None
    ) -> LibraryLora:
        """Add the LoRA at `file` (and, for a Wan 2.2 A14B LoRA, its low-noise expert's file)
        under `name` (default: the file's name); refused, changing nothing, unless it fits a
        model in the catalogue and the name is free."""
        file = Path(file)
        name = name if name is not None else _default_name(file)
        self._check_name(name)
        found = classify(file)
        fits, rank, layers = found.fits, found.rank, found.layers
        if low_noise is not None:
            second = classify(low_noise)
            two = {s.id for s in catalogue().values() if _experts(s) == 2}
            fits = tuple(m for m in fits if m in second.fits and m in two)
            if not fits:
                raise LoraFileError(
                    f"{file.name} and {Path(low_noise).name} fit no two-expert model together "
                    "(a low-noise file is for Wan 2.2 A14B's second expert)",
                    param="file",
                )
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sweep()
        token = secrets.token_hex(4)
        copies: list[Path] = []
        try:
            weights, sha = self._copy_in(file, f"{name}.{token}.safetensors")
            copies.append(weights)
            low_noise_copy = None
            if low_noise is not None:
                low_noise_copy, _ = self._copy_in(
                    Path(low_noise), f"{name}.{token}.low.safetensors"
                )
                copies.append(low_noise_copy)
            lora = LibraryLora(
                name=name,
                file=weights,
                sha256=sha,
                fits=fits,
                base=base_of(fits),
                layout=found.layout,
                rank=rank,
                layers=layers,
                low_noise_file=low_noise_copy,
                added_at=time.time(),
            )
            self._publish(lora, source=file.name)
        except BaseException:
            for copy in copies:
                with contextlib.suppress(FileNotFoundError):
                    copy.unlink()
            raise
        return lora

    def remove(self, name: str) -> LibraryLora:
        """Remove the LoRA called `name` (its record first: it is gone for every reader at
        once); a `NotFoundError` when there is none."""
        lora = self.get(name)
        record = self._record_of(name)
        if record is None:
            raise NotFoundError(f"no LoRA named {name!r} in the library", param="name")
        record.unlink()
        for path in (lora.file, lora.low_noise_file):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return lora

    # --- internals ---------------------------------------------------------------------------

    def _check_name(self, name: str) -> None:
        if not _NAME.match(name):
            raise InvalidRequestError(
                f"{name!r} is not a LoRA name: use 1–80 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                param="name",
            )
        if self._record_of(name) is not None:
            raise ConflictError(
                f"a LoRA named {name!r} is in the library already; remove it first or choose "
                "another name (--name)",
                param="name",
            )

    def _record_of(self, name: str) -> Path | None:
        if not self.folder.is_dir() or not _NAME.match(name):
            return None
        for record in self.folder.glob("*.json"):
            if record.stem.lower() == name.lower():
                return record
        return None

    def _read(self, record: Path) -> LibraryLora | None:
        try:
            data = json.loads(record.read_text())
            low = data.get("low_noise_file")
            return LibraryLora(
                name=data["name"],
                file=self.folder / data["file"],
                sha256=data["sha256"],
                fits=tuple(data["fits"]),
                base=data["base"],
                layout=data["layout"],
                rank=int(data["rank"]),
                layers=int(data["layers"]),
                low_noise_file=self.folder / low if low else None,
                added_at=float(data.get("added_at", 0.0)),
            )
        except FileNotFoundError:
            return None  # removed while being read
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("skipping the unreadable LoRA record %s: %s", record.name, err)
            return None

    def _copy_in(self, source: Path, filename: str) -> tuple[Path, str]:
        """Copy `source` into the folder as `filename` (whole, or not at all) and its SHA-256."""
        final = self.folder / filename
        tmp = self.folder / f".{filename}.tmp"
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return final, digest.hexdigest()

    def _publish(self, lora: LibraryLora, source: str) -> None:
        """Write the record beside a temporary name and link it into place: the link fails if
        the name was taken meanwhile, so of two simultaneous adds of one name, one wins."""
        record = {
            "name": lora.name,
            "file": lora.file.name,
            "low_noise_file": lora.low_noise_file.name if lora.low_noise_file else None,
            "sha256": lora.sha256,
            "fits": list(lora.fits),
            "base": lora.base,
            "layout": lora.layout,
            "rank": lora.rank,
            "layers": lora.layers,
            "added_at": lora.added_at,
            "source": source,
        }
        tmp = self.folder / f".{lora.name}.{secrets.token_hex(4)}.json.tmp"
        try:
            with open(tmp, "w") as fh:
                json.dump(record, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            if self._record_of(lora.name) is not None:
                raise FileExistsError
            os.link(tmp, self.folder / f"{lora.name}.json")
        except FileExistsError:
            raise ConflictError(
                f"a LoRA named {lora.name!r} was added meanwhile; choose another name",
                param="name",
            ) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _fsync_dir(self.folder)

    def _sweep(self) -> None:
        """Remove what an interrupted `add` left: weights no record names, temporary files."""
        named = set()
        for lora in self.all():
            named.add(lora.file.name)
            if lora.low_noise_file is not None:
                named.add(lora.low_noise_file.name)
        old = time.time() - _ORPHAN_AGE_S
        for path in self.folder.iterdir():
            left = path.name.endswith(".tmp") or (
                path.suffix == ".safetensors" and path.name not in named
            )
            with contextlib.suppress(OSError):
                if left and path.stat().st_mtime < old:
                    path.unlink()


def _experts(spec: ModelSpec) -> int:
    return spec.transformer.count if spec.transformer is not None else 1


def _default_name(file: Path) -> str:
    stem = file.name.removesuffix(".safetensors")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:80]
    return name or "lora"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["LoraFileError", "LoraLibrary", "library_folder"]
