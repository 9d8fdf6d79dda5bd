"""Build a catalogue entry's denoiser from its published config, without downloading weights.

`build_transformer_on_meta` instantiates the diffusers class with its parameters on the meta
device (no memory, instant even for 14B models); buffers computed in `__init__` (RoPE tables)
stay real on the CPU. `materialize` then gives such a model random weights on a real device,
which is what a benchmark of full-size models needs. torch and diffusers load on first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moviola.engine.catalogue import ModelSpec, TransformerSpec

if TYPE_CHECKING:
    import torch


def _transformer_spec(spec: TransformerSpec | ModelSpec) -> TransformerSpec:
    if isinstance(spec, ModelSpec):
        if spec.transformer is None:
            raise ValueError(f"model {spec.id!r} has no transformer spec")
        return spec.transformer
    return spec


def build_transformer_on_meta(spec: TransformerSpec | ModelSpec) -> torch.nn.Module:
    """One instance of `spec.cls(**spec.config)` with every parameter on the meta device.

    A `ModelSpec` stands for its `transformer`. For two-expert models (`count == 2`) this is one
    expert; build it twice for both.
    """
    import diffusers
    from accelerate import init_empty_weights

    tspec = _transformer_spec(spec)
    cls = getattr(diffusers, tspec.cls, None)
    if cls is None:
        raise ValueError(f"diffusers {diffusers.__version__} has no class {tspec.cls!r}")
    with init_empty_weights(include_buffers=False):
        model = cls(**dict(tspec.config))
    return model.eval()


def count_parameters(spec: TransformerSpec | ModelSpec) -> int:
    """Parameters of the denoiser as configured, all experts together (`count` times one)."""
    tspec = _transformer_spec(spec)
    model = build_transformer_on_meta(tspec)
    return sum(p.numel() for p in model.parameters()) * tspec.count


def materialize(
    model: torch.nn.Module,
    device: Any = "cpu",
    dtype: Any = None,
    *,
    std: float = 0.02,
    seed: int = 0,
) -> torch.nn.Module:
    """Give a model built by `build_transformer_on_meta` random weights on `device`, in place.

    Matrices and convolution kernels draw from N(0, std); 1-D `weight`s (norm scales) are ones
    and other 1-D parameters (biases, shift tables) zeros, so activations stay finite in bf16.
    Real buffers keep their values and dtype and move to `device`; meta buffers become zeros.
    `dtype` defaults to bfloat16. Parameters shared between modules stay shared.
    """
    import torch

    dtype = torch.bfloat16 if dtype is None else dtype
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    done: dict[int, torch.nn.Parameter] = {}
    with torch.no_grad():
        for module in model.modules():
            for name, param in list(module._parameters.items()):
                if param is None:
                    continue
                if id(param) not in done:
                    data = torch.empty(param.shape, device=device, dtype=dtype)
                    if param.dim() >= 2:
                        data.normal_(0.0, std, generator=generator)
                    elif name == "weight":
                        data.fill_(1.0)
                    else:
                        data.zero_()
                    done[id(param)] = torch.nn.Parameter(data, requires_grad=False)
                module._parameters[name] = done[id(param)]
            for name, buf in list(module._buffers.items()):
                if buf is None:
                    continue
                if buf.is_meta:
                    module._buffers[name] = torch.zeros(buf.shape, device=device, dtype=buf.dtype)
                else:
                    module._buffers[name] = buf.to(device)
    return model
