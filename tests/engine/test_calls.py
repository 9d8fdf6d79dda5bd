"""Every catalogue pipeline gets arguments it accepts, with its input where it expects it."""

import diffusers
import pytest
from PIL import Image

from moviola.engine import Capability, catalogue
from moviola.engine.calls import Call, call_kwargs

CASES = [
    (spec, capability, cls)
    for spec in catalogue().values()
    for capability, cls in spec.pipelines.items()
]


def make_call(capability):
    frame = Image.new("RGB", (64, 64))
    return Call(
        capability=capability,
        prompt="a heron",
        negative_prompt=None,
        width=64,
        height=64,
        frames=9,
        fps=24,
        steps=3,
        guidance=4.0,
        generator=None,
        image=frame if capability is Capability.IMAGE else None,
        video=[frame] * 9 if capability is Capability.VIDEO else None,
        strength=0.4,
    )


@pytest.mark.parametrize(
    ("spec", "capability", "cls"), CASES, ids=[f"{s.id}-{c.value}" for s, c, _ in CASES]
)
def test_call_arguments_fit_the_pipeline(spec, capability, cls):
    pipeline_cls = getattr(diffusers, cls)
    kwargs = call_kwargs(pipeline_cls, make_call(capability), dict(spec.call_defaults))
    import inspect

    accepted = set(inspect.signature(pipeline_cls.__call__).parameters)
    assert set(kwargs) <= accepted
    assert kwargs["prompt"] == "a heron" and kwargs["output_type"] == "np"
    assert kwargs["num_inference_steps"] == 3
    if capability is Capability.IMAGE:
        # VACE takes its first frame as frame 0 of a control video, kept by its mask.
        first = kwargs["image"] if "image" in kwargs else kwargs["video"][0]
        assert first is not None
    if capability is Capability.VIDEO:
        assert "video" in kwargs or "conditions" in kwargs
        strength = {"strength", "denoise_strength", "conditions"} & set(kwargs)
        assert strength, "the source's strength must reach the pipeline"
