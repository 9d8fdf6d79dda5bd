"""What the assistant knows when it answers: the page the creator is on, and Moviola itself.

The client sends the page's context with each message (`PageContext`: the page, the prompt
being written, the storyboard's shots, the video being looked at); the server adds what it
knows and the client need not send (`Facts`: that video's prompt, parameters, rating and note,
the conversation's project notes, the prompts the creator liked). `system_message` turns both
into the system message the model reads first; each part is cut to a length so the context
keeps room for the conversation itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from moviola.assistant.schemas import ActionType
from moviola.engine.storyboard import MAX_SHOTS

Page = Literal["create", "storyboard", "video", "library", "project", "other"]
# The settings of a video worth telling the model (its stored params), in the API's names.
SETTINGS: tuple[str, ...] = ("seed", "negative_prompt", "num_inference_steps", "guidance_scale")
SETTINGS += ("fps", "speed", "audio", "strength", "loras")
# What the model may offer to do on each page (the client performs it once confirmed).
OFFERS: dict[str, tuple[ActionType, ...]] = {
    "create": ("fill_prompt",),
    "storyboard": ("add_shots",),
    "video": ("remix",),
}
ABOUT = (
    "You are the creative assistant of Moviola, a self-hosted video studio that makes short "
    "videos with open video models: from a prompt (text to video), from a start image, from "
    "another video (remix, edit, extend), and storyboards of several shots rendered as one "
    "video. You help the creator write and improve prompts (subject, action, setting, camera, "
    "light, style, and sound for models that make it), plan shots and stories, and decide "
    "what to change in a video they made. Be concise and concrete; write prompts out in full."
)
ACTIONS = {
    "fill_prompt": "put a prompt you wrote into the prompt field on this page",
    "add_shots": "add shots you wrote to this storyboard",
    "remix": "remix this video with a new prompt",
}


def _text(value: Any) -> Any:
    # Forms send numbers as text; JSON clients may send them as numbers.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]


class ShotContext(BaseModel):
    """One shot of the storyboard being edited."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(default="", max_length=32_000)
    seconds: Text | None = None


class PageContext(BaseModel):
    """What the client says about the page a message was written on. Every field may be left
    out; unknown ones are refused."""

    model_config = ConfigDict(extra="forbid")
    page: Page = Field(
        default="other", description="The page: create, storyboard, video, library …"
    )
    prompt: str | None = Field(
        default=None, max_length=32_000, description="The prompt being written."
    )
    model: str | None = Field(default=None, max_length=200)
    size: str | None = Field(default=None, max_length=40)
    seconds: Text | None = Field(default=None, max_length=40)
    shots: list[ShotContext] | None = Field(
        default=None, max_length=MAX_SHOTS, description="The storyboard's shots, in order."
    )
    video_id: str | None = Field(
        default=None,
        max_length=64,
        description="The video on the page: Moviola adds what it knows.",
    )


@dataclass(frozen=True)
class VideoFacts:
    """What Moviola knows of the video on the page."""

    id: str
    status: str
    kind: str
    prompt: str | None
    model: str
    size: str
    seconds: str
    settings: dict[str, Any]
    rating: str | None  # "up", "down" or None
    rating_note: str | None
    original_prompt: str | None  # the idea, where the assistant wrote its prompt


@dataclass(frozen=True)
class Facts:
    page: PageContext
    video: VideoFacts | None = None
    project_name: str | None = None
    project_notes: str = ""
    liked: tuple[str, ...] = ()
    shot_seconds: int = 5  # the longest shot of the page's model: what added shots may be

    @property
    def offers(self) -> tuple[ActionType, ...]:
        """The actions the model may propose here: a remix only of a finished video."""
        offers = OFFERS.get(self.page.page, ())
        if "remix" in offers and (self.video is None or self.video.status != "completed"):
            return ()
        return offers


def system_message(facts: Facts, *, scale: float = 1.0) -> str:
    """The system message for `facts`; `scale` below 1 cuts every part shorter (for a small
    context)."""

    def cut(value: str, chars: int) -> str:
        limit = max(40, int(chars * scale))
        return value if len(value) <= limit else value[: limit - 1] + "…"

    page = facts.page
    parts = [ABOUT]
    if facts.offers:
        can = "; ".join(ACTIONS[offer] for offer in facts.offers)
        parts.append(
            f"On this page you may offer to: {can}. Say so in your reply; the creator "
            "confirms before anything happens. Never claim you did anything yourself."
        )
    where = [f"The creator is on the {page.page} page."]
    if page.prompt:
        where.append(f"The prompt they are writing: {cut(page.prompt, 2000)}")
    chosen = [
        f"{name} {value}"
        for name, value in (("model", page.model), ("size", page.size), ("seconds", page.seconds))
        if value
    ]
    if chosen:
        where.append("Chosen: " + ", ".join(chosen) + ".")
    if page.shots:
        shots = "\n".join(
            f"{i}. ({shot.seconds or '?'} s) {cut(shot.prompt, 300)}"
            for i, shot in enumerate(page.shots, 1)
        )
        where.append(f"The storyboard's shots so far:\n{shots}")
    parts.append("\n".join(where))
    if facts.video is not None:
        parts.append(_video(facts.video, cut))
    if facts.project_name is not None:
        notes = f" Its notes:\n{cut(facts.project_notes, 2000)}" if facts.project_notes else ""
        parts.append(f"This conversation belongs to the project {facts.project_name!r}.{notes}")
    if facts.liked:
        liked = "\n".join(f"- {cut(prompt, 300)}" for prompt in facts.liked[:5])
        parts.append(f"Prompts of videos the creator liked (their taste):\n{liked}")
    return "\n\n".join(parts)


def _video(video: VideoFacts, cut: Any) -> str:
    lines = [
        f"The video on the page: {video.id}, a {video.kind} ({video.status}), model "
        f"{video.model}, {video.size}, {video.seconds} s."
    ]
    if video.prompt:
        lines.append(f"Its prompt: {cut(video.prompt, 2000)}")
    if video.original_prompt:
        idea = cut(video.original_prompt, 600)
        lines.append(f"The creator's idea, before the assistant wrote that prompt: {idea}")
    if video.settings:
        shown = ", ".join(f"{k} {v}" for k, v in video.settings.items())
        lines.append(f"Its settings: {cut(shown, 600)}.")
    note = cut(video.rating_note, 600) if video.rating_note else ""
    if video.rating in ("up", "down"):
        verdict = "liked" if video.rating == "up" else "disliked"
        lines.append(f"The creator {verdict} it" + (f": {note}" if note else "."))
    elif note:
        lines.append(f"The creator's note on it: {note}")
    return "\n".join(lines)
