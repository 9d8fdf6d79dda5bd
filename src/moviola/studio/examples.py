"""Example prompts the composer offers while its prompt is empty: a first idea to start from,
and a show of what a good prompt says (a subject, what happens, the light, the camera)."""

from __future__ import annotations

EXAMPLES: tuple[str, ...] = (
    "A red fox trots through fresh snow at dawn, breath steaming, low golden light",
    "A paper boat drifts down a rain-soaked street at night, neon reflections rippling",
    "A lighthouse on a cliff in a storm, waves exploding against the rocks, slow push in",
    "An astronaut tends a tiny greenhouse on the Moon, Earth rising behind the glass",
    "A street market in Marrakech at dusk, lanterns glowing, handheld camera weaving through",
    "A hummingbird hovers at a purple flower in slow motion, wings a blur, shallow focus",
)
