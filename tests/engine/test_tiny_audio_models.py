"""The test models that make sound: `tiny-ltx2` (LTX-2 shape) and `tiny-audio` (Stable Audio Open
shape). Real diffusers pipelines with tiny random weights, called as Moviola calls them."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from moviola.engine.calls import Call, call_kwargs
from moviola.engine.catalogue import Capability, get_model
from moviola.engine.loading import Placement, load_pipeline, pipeline_for, resolve_model
from moviola.engine.tiny import (
    TINY_AUDIO_CHANNELS,
    TINY_AUDIO_MAX_SECONDS,
    TINY_AUDIO_SAMPLING_RATE,
    TINY_LTX2,
    TINY_MODELS,
    TINY_SOUNDTRACK_ID,
    build_tiny_pipeline,
    build_tiny_stable_audio,
    save_tiny,
    save_tiny_stable_audio,
)

W, H, FRAMES, FPS = 160, 96, TINY_LTX2.max_frames, TINY_LTX2.fps
PROMPT = "a fox running through snow"

# Stable Audio Open's scheduler steps its Brownian tree from sigma_max to 0, past the tree's own
# [sigma_min, sigma_max]; torchsde says so at every step, with real weights as with these.
pytestmark = pytest.mark.filterwarnings("ignore:Should have:UserWarning")


@pytest.fixture(scope="module")
def ltx2():
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    pipe = build_tiny_pipeline(TINY_LTX2)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def stable_audio():
    pipe = build_tiny_stable_audio()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _frames(seed: int, count: int) -> list[PIL.Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        PIL.Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)) for _ in range(count)
    ]


IMAGE = _frames(1, 1)[0]
VIDEO = _frames(2, FRAMES)
OTHER_VIDEO = _frames(3, FRAMES)


def _run(
    pipe,
    capability: Capability,
    prompt: str = PROMPT,
    seed: int = 0,
    video: list | None = None,
    strength: float = 0.6,
):
    """One call with the keyword arguments Moviola's engine builds."""
    call = Call(
        capability=capability,
        prompt=prompt,
        negative_prompt=None,
        width=W,
        height=H,
        frames=FRAMES,
        fps=FPS,
        steps=TINY_LTX2.default_steps,
        guidance=TINY_LTX2.default_guidance,
        generator=torch.Generator().manual_seed(seed),
        image=IMAGE if capability is Capability.IMAGE else None,
        video=(video or VIDEO) if capability is Capability.VIDEO else None,
        strength=strength,
    )
    kwargs = call_kwargs(type(pipe), call, dict(TINY_LTX2.call_defaults))
    assert kwargs["output_type"] == "np"
    return pipe(**kwargs)


def _view(base, capability: Capability):
    return pipeline_for(base, TINY_LTX2, capability)


def _rms(audio) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(audio, dtype=np.float64)))))


# --- tiny-ltx2 -----------------------------------------------------------------------------------


def test_tiny_ltx2_is_a_catalogue_entry_with_sound():
    assert TINY_LTX2 in TINY_MODELS and get_model("tiny-ltx2") is TINY_LTX2
    assert TINY_LTX2.audio and TINY_LTX2.is_test_model and TINY_LTX2.repo_id is None
    assert TINY_LTX2.family == "ltx2"
    assert dict(TINY_LTX2.pipelines) == {
        Capability.TEXT: "LTX2Pipeline",
        Capability.IMAGE: "LTX2ImageToVideoPipeline",
        Capability.VIDEO: "LTX2ConditionPipeline",
    }
    # The same size and frame rules as the real LTX-2 entry.
    real = get_model("ltx-2")
    assert TINY_LTX2.size_multiple == real.size_multiple == 32
    assert TINY_LTX2.frame_rule == real.frame_rule
    assert TINY_LTX2.frame_rule.accepts(TINY_LTX2.max_frames)
    assert all(w % 32 == 0 and h % 32 == 0 for w, h in TINY_LTX2.native_sizes)


def test_tiny_ltx2_has_the_real_models_classes_and_compression(ltx2):
    from transformers import Gemma3ForConditionalGeneration, GemmaTokenizer

    assert type(ltx2).__name__ == "LTX2Pipeline"
    assert isinstance(ltx2.text_encoder, Gemma3ForConditionalGeneration)
    assert isinstance(ltx2.tokenizer, GemmaTokenizer)
    assert ltx2.vae_spatial_compression_ratio == TINY_LTX2.size_multiple
    assert ltx2.vae_temporal_compression_ratio == TINY_LTX2.frame_rule.step
    # Spatio-temporal guidance perturbs a block that exists.
    blocks = TINY_LTX2.call_defaults["spatio_temporal_guidance_blocks"]
    assert all(0 <= b < ltx2.transformer.config.num_layers for b in blocks)
    assert TINY_LTX2.default_guidance > 1  # the CFG pass runs


def test_the_tokenizer_gives_every_prompt_its_own_ids(ltx2):
    ids = [
        tuple(ltx2.tokenizer(p).input_ids) for p in ("a fox", "A fox", "a f0x", "un zorro é", "狐")
    ]
    assert len(set(ids)) == len(ids)
    assert ltx2.tokenizer.unk_token_id not in {i for seq in ids for i in seq}


@pytest.mark.parametrize("capability", list(Capability))
def test_every_pipeline_makes_frames_and_sound_as_moviola_calls_it(ltx2, capability):
    pipe = _view(ltx2, capability)
    out = _run(pipe, capability)
    assert out.frames.shape == (1, FRAMES, H, W, 3)
    assert np.isfinite(out.frames).all()

    audio = out.audio  # a tensor even with output_type="np"
    assert isinstance(audio, torch.Tensor)
    rate = pipe.vocoder.config.output_sampling_rate
    assert rate == 24000
    assert audio.shape[:2] == (1, 2)
    expected = FRAMES / FPS * rate
    # 33 frames at 24 fps: round(1.375 s × 25) = 34 audio latents → 4·34 − 3 = 133 mel frames
    # (the causal mel VAE drops 3) × 240 samples = 31920, 3.3 % short of 33000, as LTX-2.
    assert abs(audio.shape[-1] - expected) / expected < 0.04
    assert audio.shape[-1] == (4 * round(FRAMES / FPS * 25) - 3) * 240
    assert torch.isfinite(audio).all()
    assert _rms(audio) > 0.05
    assert float(audio.std(dim=-1).min()) > 0.05  # a waveform, not a constant offset


@pytest.mark.parametrize("capability", list(Capability))
def test_every_pipeline_is_deterministic_and_follows_seed_and_prompt(ltx2, capability):
    pipe = _view(ltx2, capability)
    first = _run(pipe, capability)
    again = _run(pipe, capability)
    other_seed = _run(pipe, capability, seed=1)
    other_prompt = _run(pipe, capability, prompt="a cat asleep on a sofa")

    assert np.array_equal(first.frames, again.frames)
    assert torch.equal(first.audio, again.audio)
    for other in (other_seed, other_prompt):
        assert np.abs(first.frames - other.frames).mean() > 1e-3
        assert float((first.audio - other.audio).abs().mean()) > 1e-3


def test_condition_strength_one_keeps_the_picture_and_makes_sound_for_it(ltx2):
    """Moviola's "add sound to a finished video": the whole source as a condition of strength 1
    (our strength 0); the picture is kept, only the sound is new, and it depends on the picture."""
    pipe = _view(ltx2, Capability.VIDEO)
    kwargs = call_kwargs(
        type(pipe),
        Call(
            Capability.VIDEO, PROMPT, None, W, H, FRAMES, FPS, 2, 4.0, None, video=VIDEO, strength=0
        ),
        {},
    )
    assert kwargs["conditions"][0].strength == 1.0

    out = _run(pipe, Capability.VIDEO, video=VIDEO, strength=0.0)
    reseeded = _run(pipe, Capability.VIDEO, video=VIDEO, strength=0.0, seed=5)
    other = _run(pipe, Capability.VIDEO, video=OTHER_VIDEO, strength=0.0)

    # The picture is the source's (through the VAE), whatever the seed; another source, another.
    assert np.array_equal(out.frames, reseeded.frames)
    assert np.abs(out.frames - other.frames).mean() > 0.05
    # The sound is new: it changes with the seed, and with the picture it is made for.
    assert out.audio.shape == (1, 2, 31920) and _rms(out.audio) > 0.05
    assert float((out.audio - reseeded.audio).abs().mean()) > 1e-3
    assert float((out.audio - other.audio).abs().mean()) > 1e-3


def test_building_is_independent_of_the_global_rng():
    torch.manual_seed(123)
    first = build_tiny_pipeline(TINY_LTX2)
    state = torch.random.get_rng_state()
    torch.manual_seed(456)
    second = build_tiny_pipeline(TINY_LTX2)
    torch.manual_seed(123)
    assert torch.equal(torch.random.get_rng_state(), state)  # building leaves it as it was

    for name, component in first.components.items():
        if isinstance(component, torch.nn.Module):
            other = second.components[name].state_dict()
            for key, value in component.state_dict().items():
                assert torch.equal(value, other[key]), f"{name}.{key}"


@pytest.mark.slow
def test_a_saved_tiny_ltx2_loads_back_and_gives_the_same_output(ltx2, tmp_path):
    import diffusers
    from transformers import GemmaTokenizer

    folder = save_tiny(TINY_LTX2, tmp_path / "tiny-ltx2")
    direct = diffusers.LTX2Pipeline.from_pretrained(folder)
    spec, weights = resolve_model(str(folder))
    assert spec.audio and spec.family == "ltx2" and weights == folder
    moviola = load_pipeline(spec, weights, Placement(device="cpu"))

    built = _run(ltx2, Capability.TEXT, seed=3)
    for loaded in (direct, moviola):
        loaded.set_progress_bar_config(disable=True)
        assert type(loaded.tokenizer) is GemmaTokenizer
        out = _run(loaded, Capability.TEXT, seed=3)
        # Equal up to float rounding: weights mmap'd from safetensors are not 64-byte aligned,
        # which changes the order of a few sums in the CPU's matrix products (~1e-6).
        np.testing.assert_allclose(out.frames, built.frames, atol=1e-4)
        torch.testing.assert_close(out.audio, built.audio, atol=1e-4, rtol=0)
    # The other capabilities come from the loaded components as from the built ones.
    image = _run(pipeline_for(moviola, spec, Capability.IMAGE), Capability.IMAGE, seed=3)
    assert image.audio.shape == built.audio.shape


# --- tiny-audio (Stable Audio Open shape) --------------------------------------------------------


def _sound(pipe, seconds: float, prompt: str = "rain on a tin roof", seed: int = 0):
    return pipe(
        prompt,
        negative_prompt="Low quality.",
        audio_end_in_s=seconds,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    ).audios


def test_tiny_audio_has_stable_audio_opens_rate_channels_and_window(stable_audio):
    from transformers import T5EncoderModel, T5Tokenizer

    assert TINY_SOUNDTRACK_ID == "tiny-audio"
    assert type(stable_audio).__name__ == "StableAudioPipeline"
    assert type(stable_audio.scheduler).__name__ == "CosineDPMSolverMultistepScheduler"
    assert isinstance(stable_audio.text_encoder, T5EncoderModel)
    assert isinstance(stable_audio.tokenizer, T5Tokenizer)
    vae = stable_audio.vae
    assert vae.config.sampling_rate == TINY_AUDIO_SAMPLING_RATE == 44100
    assert vae.config.audio_channels == TINY_AUDIO_CHANNELS == 2
    # The pipeline's own max_audio_length_in_s.
    longest = (
        stable_audio.transformer.config.sample_size * vae.hop_length / vae.config.sampling_rate
    )
    assert pytest.approx(longest) == TINY_AUDIO_MAX_SECONDS
    assert 10.0 <= TINY_AUDIO_MAX_SECONDS < 10.1
    with pytest.raises(ValueError):
        _sound(stable_audio, TINY_AUDIO_MAX_SECONDS + 0.5)


@pytest.mark.parametrize("seconds", [3.0, 10.0])
def test_tiny_audio_makes_the_length_asked_for(stable_audio, seconds):
    audio = _sound(stable_audio, seconds)
    assert isinstance(audio, np.ndarray)
    assert audio.shape == (1, TINY_AUDIO_CHANNELS, int(seconds * TINY_AUDIO_SAMPLING_RATE))
    assert np.isfinite(audio).all()
    assert _rms(audio) > 0.02
    assert float(audio.std(axis=-1).min()) > 0.02  # a waveform, not a constant offset


def test_tiny_audio_is_deterministic_and_follows_seed_and_prompt(stable_audio):
    first = _sound(stable_audio, 4.0)
    assert np.array_equal(first, _sound(stable_audio, 4.0))
    assert np.abs(first - _sound(stable_audio, 4.0, seed=1)).mean() > 1e-3
    assert np.abs(first - _sound(stable_audio, 4.0, prompt="a dog barking")).mean() > 1e-3


def test_tiny_audio_is_independent_of_the_global_rng():
    torch.manual_seed(1)
    first = build_tiny_stable_audio().transformer.state_dict()
    torch.manual_seed(2)
    second = build_tiny_stable_audio().transformer.state_dict()
    assert all(torch.equal(v, second[k]) for k, v in first.items())


def test_a_saved_tiny_audio_loads_back_and_gives_the_same_sound(stable_audio, tmp_path):
    import diffusers
    from transformers import T5Tokenizer

    folder = save_tiny_stable_audio(tmp_path / TINY_SOUNDTRACK_ID)
    loaded = diffusers.StableAudioPipeline.from_pretrained(folder, dtype=torch.float32)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.tokenizer) is T5Tokenizer
    np.testing.assert_allclose(_sound(loaded, 2.0), _sound(stable_audio, 2.0), atol=1e-4)
