"""The generation engine: model catalogue, pipeline loading, generation, progress and cancel.

Importing this package is cheap; torch and diffusers load on first generation.
"""

from moviola.engine.catalogue import Capability, FrameRule, ModelSpec, catalogue, get_model
from moviola.engine.errors import (
    GenerationCancelled,
    GenerationError,
    UnknownModelError,
    UnsupportedInputError,
    WeightsNotFoundError,
)
from moviola.engine.generate import Engine, GenerationResult
from moviola.engine.loading import Placement
from moviola.engine.memory import InsufficientMemoryError, MemoryMode, MemoryPlan, MemoryPreference
from moviola.engine.progress import CancelToken, Progress, Stage
from moviola.engine.request import AudioMode, GenerationRequest, Plan, SoundKind, plan
from moviola.engine.sizes import parse_size

__all__ = [
    "AudioMode",
    "CancelToken",
    "Capability",
    "Engine",
    "FrameRule",
    "GenerationCancelled",
    "GenerationError",
    "GenerationRequest",
    "GenerationResult",
    "InsufficientMemoryError",
    "MemoryMode",
    "MemoryPlan",
    "MemoryPreference",
    "ModelSpec",
    "Placement",
    "Plan",
    "Progress",
    "SoundKind",
    "Stage",
    "UnknownModelError",
    "UnsupportedInputError",
    "WeightsNotFoundError",
    "catalogue",
    "get_model",
    "parse_size",
    "plan",
]
