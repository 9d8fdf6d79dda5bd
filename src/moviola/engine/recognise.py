"""Which catalogue model a diffusers folder holds, and the evidence for it.

A folder Moviola saved names its model in `moviola.json`. Any other folder (a download, a copy,
a Hugging Face cache snapshot) is matched on what its own files say: the pipeline class in
`model_index.json`, the transformer class, how many there are and their architecture (every key
the catalogue states, and every other key against the class's default), the components that
carry weights and, between entries all of that cannot tell apart (Wan 2.1 I2V at 480P and at
720P share every weight shape), the folder's name. Test models are never a match for a folder
without a marker. diffusers is imported only to read a transformer class's defaults.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moviola.engine.catalogue import ModelSpec, catalogue, get_model
from moviola.engine.errors import UnknownModelError
from moviola.engine.tiny import MARKER_FILE

log = logging.getLogger(__name__)

_TRANSFORMERS = ("transformer", "transformer_2")
# The keys that tell a model's size and kind, shown first in the evidence.
_TELLING = (
    "num_layers",
    "num_attention_heads",
    "in_channels",
    "task_type",
    "gated_attn",
    "pos_embed_seq_len",  # Wan 2.1 FLF2V: the one key its folder differs in from I2V 720P's
)
_HF_CACHE_PREFIX = "models--"  # the Hugging Face cache keeps `Org/Name` as `models--Org--Name`


@dataclass(frozen=True)
class Recognition:
    """The catalogue entry a folder holds, the evidence, and any entry it fits just as well.

    `tied_with` names the entries that nothing in the folder tells apart from `spec`; when it is
    not empty, `spec` is the first of them in catalogue order and a marker file should settle it.
    """

    spec: ModelSpec
    reasons: tuple[str, ...]
    tied_with: tuple[str, ...] = ()


def recognise(folder: Path) -> Recognition:
    """Match `folder` (a diffusers pipeline folder) to the catalogue.

    Raises `UnknownModelError` when the folder is no diffusers pipeline, or when its transformer
    matches no entry exactly; the error names the nearest entry and what differs.
    """
    folder = Path(folder)
    marker = folder / MARKER_FILE
    if marker.is_file():
        base = _read_json(marker).get("base")
        if not isinstance(base, str):
            raise UnknownModelError(f'{marker} does not say {{"base": "<model id>"}}')
        return Recognition(get_model(base), (f"{MARKER_FILE} names {base}",))

    found = _Folder.read(folder)
    fits = [_fit(spec, found) for spec in catalogue().values() if not spec.is_test_model]
    exact = [fit for fit in fits if not fit.differences]
    if not exact:
        raise UnknownModelError(_no_match_message(found, fits))
    # The closest on the rest: components as the entry ships them, then the fewest keys left
    # to defaults.
    closest = min((len(fit.component_gaps), len(fit.unstated)) for fit in exact)
    exact = [fit for fit in exact if (len(fit.component_gaps), len(fit.unstated)) == closest]
    chosen, tied, name_reason = _by_name(exact, found)
    reasons = [*chosen.evidence, *_ruled_out(chosen, fits)]
    if name_reason:
        reasons.append(name_reason)
    if tied:
        reasons.append(
            f"nothing in the folder tells {chosen.spec.id} from {', '.join(tied)}: "
            f"took {chosen.spec.id}, the first in the catalogue; add {MARKER_FILE} with "
            f'{{"base": "<model id>"}} to choose'
        )
    return Recognition(chosen.spec, tuple(reasons), tuple(tied))


def spec_for_folder(folder: Path) -> ModelSpec:
    """The catalogue entry `folder` is an instance of, as the spec of that folder (its id is the
    folder's path; it has no repository of its own)."""
    found = recognise(folder)
    if found.tied_with:
        log.warning(
            "%s could be %s or %s; loading it as %s (add %s to choose)",
            folder,
            found.spec.id,
            " or ".join(found.tied_with),
            found.spec.id,
            MARKER_FILE,
        )
    return dataclasses.replace(found.spec, id=str(folder), repo_id=None)


@dataclass(frozen=True)
class _Folder:
    """What a diffusers folder's own files say about it."""

    path: Path
    pipeline: str | None
    # Every component model_index.json lists with a class: name -> (library, class).
    components: Mapping[str, tuple[str, str]]
    # The components with weights: those with a config.json of their own (tokenizers,
    # schedulers, processors and guiders keep theirs under other names).
    models: frozenset[str]
    transformer_configs: Mapping[str, Mapping[str, Any]]
    settings: Mapping[str, Any]  # the pipeline's own keys (boundary_ratio, expand_timesteps)
    names: tuple[str, ...]

    @classmethod
    def read(cls, folder: Path) -> _Folder:
        index_file = folder / "model_index.json"
        if not index_file.is_file():
            raise UnknownModelError(
                f"{folder} is not a diffusers model folder (no model_index.json in it)"
            )
        index = _read_json(index_file)
        components: dict[str, tuple[str, str]] = {}
        settings: dict[str, Any] = {}
        for name, value in index.items():
            if name.startswith("_"):
                continue
            if isinstance(value, list) and len(value) == 2:
                if all(isinstance(part, str) for part in value):
                    components[name] = (value[0], value[1])
            else:
                settings[name] = value
        models = frozenset(n for n in components if (folder / n / "config.json").is_file())
        configs = {n: _read_json(folder / n / "config.json") for n in _TRANSFORMERS if n in models}
        pipeline = index.get("_class_name")
        return cls(
            path=folder,
            pipeline=pipeline if isinstance(pipeline, str) else None,
            components=components,
            models=models,
            transformer_configs=configs,
            settings=settings,
            names=_names(folder),
        )


@dataclass
class _Fit:
    """How one catalogue entry fits a folder."""

    spec: ModelSpec
    differences: list[str] = field(default_factory=list)  # any one rules the entry out
    structural: bool = False  # another pipeline, transformer class or number of transformers
    unstated: list[str] = field(default_factory=list)  # keys the folder leaves to defaults
    component_gaps: list[str] = field(default_factory=list)  # weighs against it
    evidence: list[str] = field(default_factory=list)


def _fit(spec: ModelSpec, found: _Folder) -> _Fit:
    fit = _Fit(spec)
    pipeline = next(iter(spec.pipelines.values()))
    if found.pipeline != pipeline:
        fit.differences.append(f"pipeline: {found.pipeline} here, {pipeline} in {spec.id}")
        fit.structural = True
    else:
        fit.evidence.append(f"model_index.json names {pipeline}, the pipeline {spec.id} loads")
    _fit_transformers(spec, found, fit)
    _fit_components(spec, found, fit)
    return fit


def _fit_transformers(spec: ModelSpec, found: _Folder, fit: _Fit) -> None:
    if spec.transformer is None:
        fit.differences.append(f"{spec.id} records no transformer to compare")
        fit.structural = True
        return
    wanted = _TRANSFORMERS[: spec.transformer.count]
    listed = tuple(n for n in _TRANSFORMERS if n in found.components)
    if listed != wanted:
        fit.differences.append(
            f"transformers: {_count(listed)} here ({', '.join(listed) or 'none'}), "
            f"{_count(wanted)} in {spec.id}"
        )
        fit.structural = True
        return
    catalogued = spec.transformer.config
    agreed = 0
    for name in wanted:
        cls = found.components[name][1]
        if cls != spec.transformer.cls:
            fit.differences.append(f"{name}: {cls} here, {spec.transformer.cls} in {spec.id}")
            fit.structural = True
            continue
        config = found.transformer_configs.get(name)
        if config is None:
            fit.differences.append(f"{name}: no {name}/config.json to compare")
            fit.structural = True
            continue
        # The entry is `cls(**catalogued)` and the folder loads as `cls(**config)`: on either
        # side a key left out is the class's default.
        defaults = _init_defaults(cls)
        published = {**defaults, **catalogued}
        for key in sorted(set(catalogued) | (set(config) & set(defaults))):
            want = published[key]
            if key in config:
                here, said = config[key], _show(config[key])
            elif key in defaults:
                here, said = defaults[key], f"not stated (so {_show(defaults[key])})"
                fit.unstated.append(f"{name}.{key}")
            else:  # a class diffusers does not have: nothing to tell what loading would use
                fit.unstated.append(f"{name}.{key}")
                continue
            if same_value(here, want):
                agreed += 1
                continue
            origin = "" if key in catalogued else ", the class default"
            fit.differences.append(f"{name}.{key}: {said} here, {_show(want)} in {spec.id}{origin}")
    if fit.differences:
        return
    telling = sorted(catalogued, key=lambda k: _TELLING.index(k) if k in _TELLING else 99)
    shown = ", ".join(f"{k}={_show(catalogued[k])}" for k in telling[:4])
    unstated = f"; not stated here: {', '.join(fit.unstated)}" if fit.unstated else ""
    fit.evidence.append(
        f"{' and '.join(wanted)}: {spec.transformer.cls} with {spec.id}'s architecture "
        f"({shown}, …; {agreed} keys agree{unstated})"
    )
    if spec.transformer.count > 1:
        ratio = found.settings.get("boundary_ratio")
        fit.evidence.append(
            "two experts" + (f", switched at boundary_ratio {_show(ratio)}" if ratio else "")
        )


@functools.cache
def _init_defaults(cls_name: str) -> Mapping[str, Any]:
    """The keyword defaults of the diffusers class `cls_name` (empty when diffusers lacks it)."""
    import diffusers

    cls = getattr(diffusers, cls_name, None)
    if cls is None:
        return {}
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _fit_components(spec: ModelSpec, found: _Folder, fit: _Fit) -> None:
    if not spec.component_params or spec.transformer is None:
        return
    wanted = set(_TRANSFORMERS[: spec.transformer.count]) | set(spec.component_params)
    missing = sorted(wanted - found.models)
    extra = sorted(found.models - wanted)
    if missing:
        fit.component_gaps.append(f"missing here: {', '.join(missing)}")
    if extra:
        fit.component_gaps.append(f"not in {spec.id}: {', '.join(extra)}")
    others = sorted(set(spec.component_params) & found.models)
    if others and not missing and not extra:
        listed = ", ".join(f"{n} ({found.components[n][1]})" for n in others)
        fit.evidence.append(f"components with weights as {spec.id} ships them: {listed}")
    elif fit.component_gaps:
        fit.evidence.append(f"components unlike {spec.id}'s: {'; '.join(fit.component_gaps)}")


def _ruled_out(chosen: _Fit, fits: Sequence[_Fit]) -> list[str]:
    """Why each other entry with the same pipeline class is not the match."""
    pipeline = next(iter(chosen.spec.pipelines.values()))
    return [
        f"not {fit.spec.id}: {fit.differences[0]}"
        for fit in fits
        if fit.differences and next(iter(fit.spec.pipelines.values())) == pipeline
    ]


def _by_name(fits: Sequence[_Fit], found: _Folder) -> tuple[_Fit, list[str], str]:
    """Among entries the architecture cannot tell apart, the one the folder's name names.

    Returns the choice, the entries still tied with it, and a line saying what the name decided
    (empty when there was nothing to decide).
    """
    if len(fits) == 1:
        return fits[0], [], ""
    ids = [fit.spec.id for fit in fits]
    scores = [
        _name_score(fit.spec, found.names, [i for i in ids if i != fit.spec.id]) for fit in fits
    ]
    top = max(scores)
    best = [fit for fit, score in zip(fits, scores, strict=True) if score == top]
    chosen = best[0]  # catalogue order: deterministic
    tied = [fit.spec.id for fit in best[1:]]
    if top == 0:
        return chosen, tied, ""
    rivals = ", ".join(i for i in ids if i != chosen.spec.id)
    return (
        chosen,
        tied,
        f"the folder's name ({' / '.join(found.names)}) says {chosen.spec.id}, not {rivals}",
    )


def _name_score(spec: ModelSpec, names: Sequence[str], rivals: Sequence[str]) -> int:
    """2: a name holds the entry's id or repository; 1: a word only this entry's id has
    (`720p` against `480p`); 0: the names say nothing about it."""
    squeezed = [_squeeze(n) for n in names]
    whole = [_squeeze(spec.id)]
    if spec.repo_id:
        whole += [_squeeze(spec.repo_id), _squeeze(spec.repo_id.split("/")[-1])]
    if any(w in s for w in whole for s in squeezed):
        return 2
    shared = {word for rival in rivals for word in _words(rival)}
    own = _words(spec.id) - shared
    return 1 if any(own & _words(n) for n in names) else 0


def _names(folder: Path) -> tuple[str, ...]:
    """The folder's name and, inside a Hugging Face cache, the repository it is a snapshot of."""
    names = [folder.name]
    for part in folder.parts:
        if part.startswith(_HF_CACHE_PREFIX):
            names.append(part[len(_HF_CACHE_PREFIX) :].replace("--", "/"))
    return tuple(dict.fromkeys(n for n in names if n))


def _squeeze(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9.]+", text.lower()) if w}


def _no_match_message(found: _Folder, fits: Sequence[_Fit]) -> str:
    nearest = min(fits, key=lambda fit: (fit.structural, len(fit.differences)))
    shown = "; ".join(nearest.differences[:6])
    if len(nearest.differences) > 6:
        shown += f"; and {len(nearest.differences) - 6} more"
    repo = f" ({nearest.spec.repo_id})" if nearest.spec.repo_id else ""
    return (
        f"{found.path} matches no catalogue model exactly. The nearest is {nearest.spec.id}{repo}, "
        f"which differs in {shown}. If the folder holds {nearest.spec.id} (a fine-tune, say) or "
        f"another catalogue model, add {MARKER_FILE} beside model_index.json with "
        f'{{"base": "<model id>"}}, e.g. {{"base": "{nearest.spec.id}"}}'
    )


def same_value(found: Any, published: Any) -> bool:
    """Whether a value read from JSON is the catalogue's: lists equal tuples, 1 equals 1.0,
    floats within rounding of each other, but `true` is not `1`."""
    if isinstance(found, bool) or isinstance(published, bool):
        return isinstance(found, bool) and isinstance(published, bool) and found == published
    if isinstance(found, int | float) and isinstance(published, int | float):
        return math.isclose(found, published, rel_tol=1e-9)
    if isinstance(found, list | tuple) and isinstance(published, list | tuple):
        return len(found) == len(published) and all(
            same_value(a, b) for a, b in zip(found, published, strict=True)
        )
    if isinstance(found, Mapping) and isinstance(published, Mapping):
        return found.keys() == published.keys() and all(
            same_value(found[k], published[k]) for k in found
        )
    return bool(found == published)


def _count(names: Sequence[str]) -> str:
    return ("none", "one", "two")[len(names)] if len(names) <= 2 else str(len(names))


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UnknownModelError(f"{path} cannot be read as JSON: {err}") from None
    if not isinstance(data, dict):
        raise UnknownModelError(f"{path} is not a JSON object")
    return data
