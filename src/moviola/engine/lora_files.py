"""What a LoRA file is: its keys and shapes, its key layout, and which catalogue models it fits.

A file is read from its safetensors header alone: names, dtypes and shapes, no weights (only
the scalar `alpha`s a converter reads). The keys go through diffusers' own converters, family by
family (`WanLoraLoaderMixin.lora_state_dict` reads original Wan `diffusion_model.…` and
musubi/kohya `lora_unet_…` keys; LTX's and LTX-2's read theirs), on stand-in tensors that hold
only a shape. A model fits when its denoiser has every layer the converted LoRA adapts, with the
same input and output sizes: Wan 2.1 1.3B is 1536 wide and 14B 5120, and an I2V LoRA adapts the
image cross-attention (`add_k_proj`) that only I2V models have. torch and diffusers load inside
the functions that need them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from moviola.engine.catalogue import ModelSpec, TransformerSpec, catalogue
from moviola.errors import InvalidRequestError

MAX_HEADER_BYTES = 100 * 1024 * 1024  # a LoRA for a 48-layer model lists a few thousand keys
_TARGET = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A|lora_B)\.(?P<what>weight|bias)$")
# safetensors' dtype names → torch's, for the stand-ins (their values are never read).
_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


class LoraFileError(InvalidRequestError):
    """The file is no LoRA Moviola can use: unreadable, not a LoRA, or for no model here."""

    code = "invalid_lora"


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # as safetensors names it: F32, BF16 …
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Classified:
    """What `classify` found out about a LoRA file."""

    fits: tuple[str, ...]  # catalogue ids, in catalogue order
    layout: str  # diffusers, original-wan, kohya, original
    rank: int
    layers: int  # layers of the denoiser it adapts

    @property
    def base(self) -> str:
        return base_of(self.fits)


def base_of(fits: tuple[str, ...]) -> str:
    """The model a LoRA fitting `fits` was made for, in words: the first of them by name."""
    first = catalogue()[fits[0]]
    more = len(fits) - 1
    return first.name + (f" (and {more} more of its size)" if more else "")


def read_header(path: Path) -> dict[str, TensorInfo]:
    """The tensors a safetensors file holds, from its header; a `LoraFileError` for a file that
    is not one."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
                raise ValueError("no safetensors header")
            header = json.loads(fh.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else "not readable"
        raise LoraFileError(
            f"{path.name} is not a safetensors file ({reason})", param="file"
        ) from None
    if not isinstance(header, dict):
        raise LoraFileError(f"{path.name} is not a safetensors file", param="file")
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise LoraFileError(f"{path.name}: its header is damaged at {name!r}", param="file")
        tensors[name] = TensorInfo(str(entry.get("dtype")), tuple(shape))
    return tensors


def layout_of(keys: list[str]) -> str:
    if any(k.startswith("diffusion_model.") for k in keys):
        return "original"
    if any(k.startswith("lora_unet_") for k in keys):
        return "kohya"
    return "diffusers"


def classify(path: Path) -> Classified:
    """Which catalogue models the LoRA at `path` fits; a `LoraFileError` saying why for a file
    that fits none (or is no LoRA)."""
    path = Path(path)
    header = read_header(path)
    keys = list(header)
    if not any(("lora" in k.lower() or k.endswith(".alpha")) for k in keys):
        raise LoraFileError(
            f"{path.name} holds no LoRA weights (no lora_A / lora_B or lora_down / lora_up "
            "keys): is it a whole model rather than a LoRA?",
            param="file",
        )
    stand_ins = _stand_ins(path, header)
    layout = layout_of(keys)
    fits: list[str] = []
    reasons: list[tuple[int, str]] = []  # (how near it came, why not)
    rank = layers = 0
    for pipeline_cls, specs in _families().items():
        converted, why = _converted(pipeline_cls, stand_ins)
        if converted is None:
            reasons.append((0, f"{specs[0].family}: {why}"))
            continue
        if layout == "original" and specs[0].family.startswith("wan"):
            layout = "original-wan"
        for spec in specs:
            matched, problem = _match(converted, spec)
            if problem is None:
                fits.append(spec.id)
                rank = max(rank, *(t.shape[0] for k, t in converted.items() if ".lora_A." in k))
                layers = matched
            else:
                reasons.append((matched, problem))
    if not fits:
        best = max(reasons, key=lambda r: r[0])[1] if reasons else "no model matched"
        raise LoraFileError(f"{path.name} fits no model in the catalogue: {best}", param="file")
    order = list(catalogue())
    return Classified(tuple(sorted(fits, key=order.index)), layout, rank, layers)


# --- internals ---------------------------------------------------------------------------------


def _stand_ins(path: Path, header: Mapping[str, TensorInfo]) -> dict[str, Any]:
    """Shape-only tensors on the meta device for every key, and the real values of scalars (a
    converter reads each layer's `alpha` to fold it into the weights)."""
    import torch
    from safetensors import safe_open

    tensors: dict[str, Any] = {}
    scalars = [name for name, info in header.items() if _numel(info.shape) <= 1]
    if scalars:
        try:
            with safe_open(str(path), framework="pt") as fh:
                for name in scalars:
                    tensors[name] = fh.get_tensor(name)
        except Exception as err:  # a damaged file: safetensors says what
            raise LoraFileError(f"{path.name} could not be read ({err})", param="file") from None
    for name, info in header.items():
        if name not in tensors:
            dtype = getattr(torch, _DTYPES.get(info.dtype, "float32"))
            tensors[name] = torch.empty(info.shape, dtype=dtype, device="meta")
    return tensors


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _families() -> dict[type, list[ModelSpec]]:
    """Catalogue models by the pipeline class that loads their LoRAs (one class per key layout
    family); models whose pipelines load no LoRA are left out."""
    import diffusers

    found: dict[type, list[ModelSpec]] = {}
    for spec in catalogue().values():
        classes: list[Any] = [getattr(diffusers, name, None) for name in spec.pipelines.values()]
        if not all(cls is not None and hasattr(cls, "lora_state_dict") for cls in classes):
            continue
        loader = classes[0]
        mixin = next((b for b in loader.__mro__ if b.__name__.endswith("LoraLoaderMixin")), loader)
        found.setdefault(mixin, []).append(spec)
    return found


def _converted(mixin: type, stand_ins: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The keys as this family's loader would load them, or None and why it would not."""
    import logging

    quiet = logging.getLogger("diffusers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        state = mixin.lora_state_dict(dict(stand_ins))  # type: ignore[attr-defined]
    except Exception as err:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        return None, f"its keys are in no layout this family's loader reads ({detail})"
    finally:
        quiet.setLevel(level)
    if isinstance(state, tuple):
        state = state[0]
    return dict(state), ""


def _match(converted: Mapping[str, Any], spec: ModelSpec) -> tuple[int, str | None]:
    """How many layers of `spec`'s denoiser the LoRA adapts, and why it does not fit (None: it
    fits)."""
    loadable = {"transformer", "connectors"} & set(_loadable(spec))
    layers: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, tensor in converted.items():
        component, _, rest = key.partition(".")
        if component not in loadable:
            return 0, (
                f"{spec.id}: its key {key!r} names nothing {spec.id}'s pipeline loads a LoRA "
                f"into ({', '.join(sorted(loadable))})"
            )
        if component != "transformer":
            continue  # the text connectors (LTX-2): they come with the denoiser they serve
        target = _TARGET.match(rest)
        if target is None:
            return 0, f"{spec.id}: {key!r} is not a LoRA weight (lora_A / lora_B)"
        parts = layers.setdefault(target["module"], {})
        parts[f"{target['part']}.{target['what']}"] = tuple(tensor.shape)
    if not layers:
        return 0, f"{spec.id}: it adapts nothing in the denoiser"
    shapes = _layer_shapes(spec.id)
    if shapes is None:
        return 0, f"{spec.id}: its denoiser's layers are not known here"
    matched = 0
    for module, parts in sorted(layers.items()):
        have = shapes.get(module)
        if have is None:
            return matched, f"{spec.id} has no layer {module!r}"
        a, b = parts.get("lora_A.weight"), parts.get("lora_B.weight")
        if a is None or b is None:
            return matched, f"{module!r} lacks its lora_A or lora_B weight"
        if a[1] != have[0] or b[0] != have[1] or a[0] != b[1]:
            return matched, (
                f"its layer {module} maps {a[1]} → {b[0]} values; {spec.id}'s maps "
                f"{have[0]} → {have[1]} (the LoRA was made for a model of another size)"
            )
        matched += 1
    return matched, None


def _loadable(spec: ModelSpec) -> list[str]:
    import diffusers

    cls = getattr(diffusers, next(iter(spec.pipelines.values())))
    return list(getattr(cls, "_lora_loadable_modules", ["transformer"]))


@cache
def _layer_shapes(model_id: str) -> dict[str, tuple[int, int]] | None:
    """`{layer name: (inputs, outputs)}` for every linear and convolution layer of a catalogue
    model's denoiser, built on the meta device (a test model is built for real: it is tiny)."""
    from moviola.engine.tiny import build_tiny_pipeline

    spec = catalogue()[model_id]
    if spec.transformer is not None:
        return _architecture_shapes(spec.transformer)
    if spec.is_test_model:
        return _shapes(build_tiny_pipeline(spec).transformer)
    return None


_ARCHITECTURES: dict[str, dict[str, tuple[int, int]]] = {}


def _architecture_shapes(transformer: TransformerSpec) -> dict[str, tuple[int, int]]:
    """Several entries share one architecture (Wan 2.1 and 2.2 14B): each is built once."""
    from moviola.engine.architectures import build_transformer_on_meta

    key = f"{transformer.cls}:{sorted(transformer.config.items())!r}"
    if key not in _ARCHITECTURES:
        _ARCHITECTURES[key] = _shapes(build_transformer_on_meta(transformer))
    return _ARCHITECTURES[key]


def _shapes(model: Any) -> dict[str, tuple[int, int]]:
    import torch

    shapes: dict[str, tuple[int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            shapes[name] = (module.in_features, module.out_features)
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            shapes[name] = (module.in_channels, module.out_channels)
    return shapes
