"""A preview of the video while it is denoised: the current latents, projected to colours.

Decoding latents through the VAE costs as much as the final decode, so a preview takes the
cheap road every latent-diffusion UI takes: a linear map from the latent channels to RGB
("latent RGB factors"), applied to one latent frame, which gives a picture at the latent
grid's size (a 1280×720 Wan 2.2 video: 80×45) in well under a millisecond.

The map is fitted once per VAE from the VAE itself: a few dozen colour swatches and smooth
random patterns are encoded, scaled the way the pipelines scale their latents, and a least-
squares fit finds the channel weights and bias that best give back each swatch's colours. So
every model, whatever its latent channels (Wan 2.1: 16, Wan 2.2: 48, LTX-Video: 128, the
tiny test models: 8 to 48), gets a map made for its own VAE; no table of factors is kept.
Fitting runs the encoder on the device the VAE is on, once (tens of milliseconds); where the
VAE is offloaded (its weights moved in and out by hooks) that would shuffle weights in the
middle of denoising, so the map is instead a fixed random projection, normalised per picture:
the shapes show, the colours are arbitrary. The same fallback serves a VAE whose encoder
cannot take a single frame.

The latents are read at the denoiser's input (a forward pre-hook), so the picture is of the
noisy latents after the steps taken so far: noise at first, the video emerging as it goes.
Pipelines that pack latents into tokens (LTX-Video) are unpacked when each token is one latent
pixel and their count is the call's latent grid (not so with conditioning tokens added, as an
LTX-Video image-to-video call has): otherwise that call makes no preview.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

_SWATCHES = 32  # pictures encoded to fit the map: 16 plain colours, 16 smooth patterns
_GRID = 4  # latent pixels along a swatch's side
_RIDGE = 1e-3  # keeps the fit steady for a VAE whose channels are nearly redundant

_maps: weakref.WeakKeyDictionary[Any, LatentToRGB] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LatentToRGB:
    """`rgb = latents · weights + bias` per latent pixel (weights C×3, in image units −1…1);
    `fitted`: made from the VAE (else a random projection, stretched per picture)."""

    weights: np.ndarray
    bias: np.ndarray
    fitted: bool

    @property
    def channels(self) -> int:
        return int(self.weights.shape[0])


def latent_channels(vae: Any) -> int | None:
    """How many channels the VAE's latents have (Wan: `z_dim`; others: `latent_channels`)."""
    config = getattr(vae, "config", None)
    for name in ("z_dim", "latent_channels"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def random_map(channels: int) -> LatentToRGB:
    """A fixed random projection (the same for every VAE with this many channels)."""
    rng = np.random.default_rng(channels)
    weights = rng.standard_normal((channels, 3)) / np.sqrt(channels)
    return LatentToRGB(weights.astype(np.float32), np.zeros(3, np.float32), fitted=False)


def map_for(pipe: Any) -> LatentToRGB | None:
    """The latent → RGB map of `pipe`'s VAE, fitted on first use (see the module's note)."""
    vae = getattr(pipe, "vae", None)
    channels = latent_channels(vae)
    if vae is None or channels is None:
        return None
    found = _maps.get(vae)
    if found is None:
        found = _fit(vae, channels, _spatial_ratio(pipe)) if _resident(vae) else None
        found = found or random_map(channels)
        _maps[vae] = found
    return found


def _resident(vae: Any) -> bool:
    """Whether the VAE's weights stay where they are (no offload hooks move them)."""
    if getattr(vae, "_hf_hook", None) is not None or getattr(vae, "_diffusers_hook", None):
        return False
    return all(not hasattr(m, "_hf_hook") for m in vae.modules())


def _spatial_ratio(pipe: Any) -> int:
    for name in ("vae_scale_factor_spatial", "vae_spatial_compression_ratio"):
        value = getattr(pipe, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 8


def _fit(vae: Any, channels: int, ratio: int) -> LatentToRGB | None:
    import torch
    import torch.nn.functional as F

    try:
        parameter = next(vae.parameters())
        images = _swatches(ratio * _GRID)  # N×3×1×S×S in −1…1
        with torch.no_grad():
            encoded = vae.encode(images.to(parameter.device, parameter.dtype))
            dist = getattr(encoded, "latent_dist", encoded)
            z = dist.mode() if hasattr(dist, "mode") else dist
            latents = _pipeline_scale(vae, z.float().cpu(), channels)
    except Exception:  # an encoder that takes no single frame, or any other surprise
        return None
    if latents.ndim != 5 or latents.shape[1] != channels:
        return None
    height, width = latents.shape[-2:]
    targets = F.adaptive_avg_pool2d(images[:, :, 0], (height, width))
    x = latents[:, :, 0].permute(0, 2, 3, 1).reshape(-1, channels).double()
    y = targets.permute(0, 2, 3, 1).reshape(-1, 3).double()
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    scale = x.pow(2).mean(0).clamp_min(1e-12)
    gram = x.T @ x + _RIDGE * len(x) * torch.diag(scale)
    solution = torch.linalg.solve(gram, x.T @ y)
    if not torch.isfinite(solution).all():
        return None
    weights = solution[:channels].float().numpy()
    return LatentToRGB(weights, solution[channels].float().numpy(), fitted=True)


def _pipeline_scale(vae: Any, z: Any, channels: int) -> Any:
    """The VAE's latents as its pipelines hold them while denoising: Wan normalises by the
    config's per-channel mean and std, LTX-Video by its buffers and a scaling factor, the
    others multiply by `scaling_factor`."""
    import torch

    config = vae.config
    shape = (1, channels, 1, 1, 1)
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if isinstance(mean, (list, tuple)) and isinstance(std, (list, tuple)) and len(mean) == channels:
        return (z - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)
    scaling = float(getattr(config, "scaling_factor", 1.0) or 1.0)
    buffers = getattr(vae, "latents_mean", None), getattr(vae, "latents_std", None)
    if all(isinstance(b, torch.Tensor) and b.numel() == channels for b in buffers):
        mean, std = (torch.as_tensor(b).float().cpu().view(shape) for b in buffers)
        return (z - mean) * scaling / std
    return z * scaling


def _swatches(size: int) -> Any:
    """Plain colours (the cube's corners and greys) and smooth random colour fields."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    corners = torch.tensor(
        [[r, g, b] for r in (-1.0, 1.0) for g in (-1.0, 1.0) for b in (-1.0, 1.0)]
    )
    greys = torch.linspace(-0.75, 0.75, 4)[:, None].expand(4, 3)
    plain = torch.cat([corners, greys, torch.rand(4, 3, generator=generator) * 2 - 1])
    solid = plain[:, :, None, None].expand(-1, -1, size, size)
    coarse = torch.rand(_SWATCHES - len(plain), 3, 4, 4, generator=generator) * 2 - 1
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return torch.cat([solid, smooth])[:, :, None].contiguous()


class Previewer:
    """Makes previews from one pipeline call's denoiser input; see `frame`."""

    def __init__(self, pipe: Any, width: int, height: int, frames: int):
        self.pipe = pipe
        self.map = map_for(pipe)
        ratio = _spatial_ratio(pipe)
        temporal = getattr(pipe, "vae_scale_factor_temporal", None) or getattr(
            pipe, "vae_temporal_compression_ratio", None
        )
        # The latent grid, for unpacking a token sequence (LTX-Video).
        self.grid = ((frames - 1) // int(temporal or 4) + 1, height // ratio, width // ratio)
        transformer = type(getattr(pipe, "transformer", None)).__name__
        self.frames_first = transformer.startswith("CogVideoX")  # B×F×C×H×W

    def frame(self, hidden_states: Any) -> np.ndarray | None:
        """The middle latent frame of the first batch entry as uint8 H×W×3; None when the
        denoiser's input is not a latent grid this can read."""
        if self.map is None or not hasattr(hidden_states, "ndim"):
            return None
        latents = self._grid(hidden_states)
        if latents is None:
            return None
        import torch

        channels = self.map.channels
        with torch.no_grad():
            middle = latents[:channels, latents.shape[1] // 2].float()  # C×H×W
            weights = torch.as_tensor(self.map.weights, device=middle.device)
            rgb = torch.einsum("chw,ck->hwk", middle, weights).cpu().numpy()
        rgb = rgb + self.map.bias
        if self.map.fitted:
            rgb = (rgb + 1.0) / 2.0
        else:  # arbitrary units: stretched to the picture's own range
            low, high = np.percentile(rgb, [2, 98])
            rgb = (rgb - low) / max(high - low, 1e-6)
        return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def _grid(self, hidden_states: Any) -> Any:
        """C×T×H×W latents of the first batch entry, or None."""
        assert self.map is not None
        channels = self.map.channels
        if hidden_states.ndim == 5:
            first = hidden_states[0]
            if self.frames_first:
                first = first.permute(1, 0, 2, 3)
            return first if first.shape[0] >= channels else None
        if hidden_states.ndim == 3:  # tokens: B × (T·H·W) × C at a patch size of 1
            t, h, w = self.grid
            tokens, width = hidden_states.shape[1:]
            if tokens != t * h * w or width != channels:
                return None
            return hidden_states[0].reshape(t, h, w, width).permute(3, 0, 1, 2)
        return None
