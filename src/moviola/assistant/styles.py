"""How each family of video models likes its prompts: the one table the prompt writer, the
storyboard writer and the conversation read.

Each family's guide follows what its makers publish (Wan's prompt extender, LTX's and LTX-2's
prompting guides, HunyuanVideo 1.5's prompt rewriter, CogVideoX's caption-style prompts): how
long a prompt should be, in what order it says things, and what the model responds to. A model
that makes its own sound (`ModelSpec.audio`, LTX-2) is also told what it should hear.
"""

from __future__ import annotations

from dataclasses import dataclass

from moviola.engine.catalogue import ModelSpec

# What every good video prompt covers, whatever the model.
ELEMENTS = ("subject", "action", "setting", "camera", "light", "style")


@dataclass(frozen=True)
class StyleGuide:
    name: str  # the family as people call it
    words: tuple[int, int]  # how long a prompt for it should be, in words
    guide: str  # how its prompts read


DEFAULT = StyleGuide(
    "a text-to-video model",
    (50, 120),
    "One paragraph of plain, concrete English in the present tense: the subject and what it "
    "looks like, what it does, where and when, how the camera sees it (shot size, angle, "
    "movement), the light, and the visual style.",
)

STYLES: dict[str, StyleGuide] = {
    "wan": StyleGuide(
        "Wan",
        (80, 120),
        "One flowing paragraph: the subject with concrete detail (age, clothing, texture), its "
        "motion described step by step, the scene around it, then cinematic language Wan "
        "follows closely: shot size (close-up, medium, wide), camera angle and movement "
        "(slow push-in, tracking shot, aerial), lens, light source and quality (soft "
        "side light, golden hour, neon), time of day, colour tone and a style (film still, "
        "anime, 3D render).",
    ),
    "wan-ti2v": StyleGuide(
        "Wan 2.2",
        (80, 120),
        "One flowing paragraph: subject and appearance, its motion step by step, the setting, "
        "then Wan 2.2's aesthetic controls: light source, lighting type and time of day, shot "
        "size, composition, lens and camera angle, camera movement, colour tone and style.",
    ),
    "ltx": StyleGuide(
        "LTX-Video",
        (100, 200),
        "A single literal paragraph written like a cinematographer's shot description, in "
        "chronological order: start with the main action in one sentence, then specific "
        "movements and gestures, the characters' or objects' appearance, the background and "
        "environment, the camera angle and movement, the light and colours, and any change "
        "or sudden event. Precise, not poetic.",
    ),
    "ltx2": StyleGuide(
        "LTX-2",
        (100, 200),
        "One flowing paragraph of four to eight present-tense sentences, in the order the "
        "viewer experiences it: establish the shot (scale, angle, lens), set the scene (light, "
        "colour, textures, atmosphere), the action as it unfolds, the characters (age, hair, "
        "clothing, emotion shown through the body), the camera's movement, and the sound.",
    ),
    "hunyuanvideo15": StyleGuide(
        "HunyuanVideo 1.5",
        (60, 150),
        "A structured description in one paragraph: subject, then its motion, then the scene, "
        "then the camera's movement in plain words (the camera slowly pushes in, pans left), "
        "then atmosphere, lighting and style. Concrete nouns and verbs; no lists.",
    ),
    "cogvideox": StyleGuide(
        "CogVideoX",
        (60, 140),
        "A dense caption of the video as its training captions read, in one paragraph: what "
        "is seen, in order, with visual detail (colours, materials, light, camera). Its text "
        "encoder reads at most 226 tokens, so stay short: what does not fit is cut off.",
    ),
}

SOUND = (
    "The model makes sound with the picture: also describe what is heard, in the same "
    "paragraph: ambient sound, effects, music, and any speech in quotes with who says it."
)


def style_for(spec: ModelSpec) -> StyleGuide:
    """The guide for `spec`'s family; a family with none gets the general one."""
    return STYLES.get(spec.family, DEFAULT)


def writing_brief(spec: ModelSpec) -> str:
    """What a prompt for `spec` should be, as instructions for the model that writes it."""
    style = style_for(spec)
    least, most = style.words
    elements = ", ".join((*ELEMENTS, "sound") if spec.audio else ELEMENTS)
    lines = [
        f"The prompt is for {spec.name} ({style.name}). Cover {elements}.",
        style.guide,
        f"Aim for {least}–{most} words. English, no lists, no markdown, no titles.",
    ]
    if spec.audio:
        lines.append(SOUND)
    return "\n".join(lines)
