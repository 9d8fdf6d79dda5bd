"""Previews while denoising: the latents, projected to a small picture every few steps."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput

from moviola.engine import GenerationRequest, Stage
from moviola.engine.preview import Previewer, map_for, random_map
from moviola.engine.tiny import TINY, build_tiny_pipeline


def request(model: str, **kwargs) -> GenerationRequest:
    kwargs.setdefault("seed", 5)
    return GenerationRequest("a lighthouse in a storm", model=model, **kwargs)


@pytest.fixture
def every_step(engine):
    """The engine with a preview due at every step (normally at most one every 2 s)."""
    kept = engine.preview_every_s
    engine.preview_every_s = 0.0
    yield engine
    engine.preview_every_s = kept


@pytest.mark.parametrize(
    ("model", "grid"),
    [("tiny", (6, 10)), ("tiny-ltx", (24, 40))],  # Wan's 16× VAE; LTX's tokens, unpacked
)
def test_previews_ride_on_the_step_reports_while_denoising(every_step, model, grid):
    reports = []
    every_step.generate(request(model, frames=9, steps=6), on_progress=reports.append)
    shown = [r for r in reports if r.preview is not None]
    # The latents after steps 1…5 are shown with the reports of steps 2…6: no extra reports.
    assert [r.step for r in shown] == [2, 3, 4, 5, 6]
    assert all(r.stage is Stage.DENOISING for r in shown)
    steps = [r.step for r in reports if r.stage is Stage.DENOISING and r.step]
    assert steps == [1, 2, 3, 4, 5, 6]
    for report in shown:
        assert report.preview.dtype == np.uint8
        assert report.preview.shape == (*grid, 3)  # the latent grid of a 160×96 video
        assert report.preview.std() > 0
    # The picture follows the latents as they are denoised.
    assert not np.array_equal(shown[0].preview, shown[-1].preview)


def test_previews_come_at_most_once_an_interval(engine):
    kept = engine.preview_every_s
    engine.preview_every_s = 3600.0
    try:
        reports = []
        engine.generate(request("tiny", frames=9, steps=6), on_progress=reports.append)
    finally:
        engine.preview_every_s = kept
    # The first step's latents, then nothing until the interval has passed.
    assert [r.step for r in reports if r.preview is not None] == [2]


def test_nobody_listening_means_no_preview_is_made(engine, monkeypatch):
    made = []
    original = Previewer.frame
    monkeypatch.setattr(Previewer, "frame", lambda self, h: made.append(1) or original(self, h))
    engine.generate(request("tiny", frames=9, steps=4))
    assert made == []


class LinearVAE(torch.nn.Module):
    """A VAE built in code whose latents are a known linear mix of each 8×8 block's colour
    (plus the Wan normalisation), so the fitted map can be checked against the truth."""

    def __init__(self, channels: int = 16):
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.mix = torch.nn.Parameter(torch.randn(channels, 3, generator=generator))
        self.offset = torch.nn.Parameter(torch.randn(channels, generator=generator))
        mean = torch.randn(channels, generator=generator).tolist()
        std = (torch.rand(channels, generator=generator) + 0.5).tolist()
        self.config = SimpleNamespace(z_dim=channels, latents_mean=mean, latents_std=std)

    def encode(self, x: torch.Tensor) -> AutoencoderKLOutput:
        pooled = torch.nn.functional.avg_pool3d(x, (1, 8, 8))  # B×3×T×h×w
        z = torch.einsum("bcthw,kc->bkthw", pooled, self.mix) + self.offset.view(1, -1, 1, 1, 1)
        moments = torch.cat([z, torch.full_like(z, -30.0)], dim=1)  # a mean and a log variance
        return AutoencoderKLOutput(latent_dist=DiagonalGaussianDistribution(moments))


def test_the_map_is_fitted_to_the_vae_and_gives_colours_back():
    vae = LinearVAE()
    pipe = SimpleNamespace(vae=vae, vae_scale_factor_spatial=8, transformer=None)
    found = map_for(pipe)
    assert found is not None and found.fitted and found.channels == 16
    # A red block and a blue one, encoded and held as the pipeline holds them.
    image = torch.full((1, 3, 1, 16, 32), -1.0)
    image[:, 0, :, :, :16] = 1.0
    image[:, 2, :, :, 16:] = 1.0
    with torch.no_grad():
        z = vae.encode(image).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    latents = (z - mean) / std
    picture = Previewer(pipe, width=32, height=16, frames=1).frame(latents)
    assert picture.shape == (2, 4, 3)
    assert np.abs(picture[:, :2].astype(int) - [255, 0, 0]).max() <= 8
    assert np.abs(picture[:, 2:].astype(int) - [0, 0, 255]).max() <= 8


def test_an_offloaded_vae_gets_a_fixed_random_projection():
    from accelerate.hooks import ModelHook, add_hook_to_module

    pipe = build_tiny_pipeline(TINY)  # a VAE of its own: maps are kept per VAE
    add_hook_to_module(pipe.vae, ModelHook())  # as offloading attaches to move weights
    found = map_for(pipe)
    assert found is not None and not found.fitted
    assert np.array_equal(found.weights, random_map(48).weights)
    latents = torch.randn(1, 48, 3, 6, 10, generator=torch.Generator().manual_seed(1))
    picture = Previewer(pipe, width=160, height=96, frames=9).frame(latents)
    # Stretched to its own range: shapes show even where colours mean nothing.
    assert picture.shape == (6, 10, 3) and picture.min() < 40 and picture.max() > 215


def test_a_denoiser_input_that_is_no_latent_grid_gives_no_preview():
    pipe = build_tiny_pipeline(TINY)
    previewer = Previewer(pipe, width=160, height=96, frames=9)
    assert previewer.frame(torch.zeros(1, 7, 48)) is None  # tokens that are not the grid
    assert previewer.frame(torch.zeros(1, 4, 3, 6, 10)) is None  # fewer channels than latents


def test_what_previews_cost_a_step(engine):
    """Not an assertion: prints the seconds per step without and with a preview every step."""

    def per_step(every_s: float) -> float:
        engine.preview_every_s = every_s
        times = []
        engine.generate(
            request("tiny", frames=9, steps=16),
            on_progress=lambda r: (
                times.append(time.perf_counter()) if r.stage is Stage.DENOISING and r.step else None
            ),
        )
        return float(np.median(np.diff(times)))

    kept = engine.preview_every_s
    without, every = [], []
    try:
        per_step(float("inf"))  # warm
        for _ in range(2):  # interleaved, so that a busy moment weighs on both alike
            without.append(per_step(float("inf")))
            every.append(per_step(0.0))
    finally:
        engine.preview_every_s = kept
    print(
        f"\ntiny 160x96x9, 16 steps: {min(without) * 1000:.1f} ms/step without previews, "
        f"{min(every) * 1000:.1f} ms/step with one at every step"
    )
