"""What the API and the Studio ask of the assistant: one code path for both.

    assistant = Assistant(settings, sessions, chat, videos)
    written = await assistant.write_prompt(caller, "a corgi surfing", "sora-2")
    board = await assistant.storyboard(caller, script, "sora-2", seconds=20)
    turn = await assistant.turn(caller, conversation_id, "make it rain", PageContext(...))
    async for event in turn.events(): ...

Every call checks its text with the operator's prompt policy first (what the videos' prompts
pass: a blocked text is a 400 and changes nothing), and is written to the audit log
(`assistant.prompt`, `assistant.storyboard`, `assistant.turn`) with its outcome and the number
of calls it made to the chat backend. A conversation is the caller's or not found (404).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.orm import Session, sessionmaker

from moviola.assistant import budget, ratings
from moviola.assistant.context import SETTINGS, Facts, PageContext, VideoFacts, system_message
from moviola.assistant.projects import ConversationView, MessageView, Projects
from moviola.assistant.prompt_writer import WrittenPrompt, write_prompt
from moviola.assistant.storyboard_writer import (
    CharacterChoice,
    Storyboard,
    check_script,
    limits,
    script_to_shots,
)
from moviola.assistant.structured import Chat, Counted
from moviola.assistant.turn import fit_history, propose_or_none, reply_tokens
from moviola.config import Settings
from moviola.engine.catalogue import ModelSpec, get_model
from moviola.errors import InvalidRequestError, MoviolaError, NotFoundError
from moviola.jobs.service import DEFAULT_MODEL, Caller, VideoService
from moviola.store import audit
from moviola.store.models import VideoKind, VideoStatus

log = logging.getLogger("moviola.assistant")


class Assistant:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        backend: Chat,
        videos: VideoService,
    ):
        self.settings = settings
        self.sessions = sessions
        self.backend = backend
        self.videos = videos
        self.projects = Projects(sessions, record=settings.audit)

    # --- prompt writing ----------------------------------------------------------------------

    async def write_prompt(
        self, caller: Caller, idea: Any, model: str | None = None, *, via: str = "assistant"
    ) -> WrittenPrompt:
        """The idea as a detailed prompt for `model`'s family, with three variants. `via` says
        in the audit log who asked (the assistant endpoint, or a video's `enhance_prompt`)."""
        idea = self._text(idea, "prompt", self.settings.max_prompt_chars)
        spec = self.spec(model)
        await self._moderate(caller, "assistant.prompt", idea, "prompt")
        liked = await anyio.to_thread.run_sync(self.projects.liked_prompts, caller.owner, 5)
        detail = {"model": model or DEFAULT_MODEL, "via": via}
        async with self._audited(caller, "assistant.prompt", detail) as chat:
            return await write_prompt(
                chat,
                idea,
                spec,
                liked_prompts=liked,
                max_chars=self.settings.max_prompt_chars,
            )

    # --- script → storyboard -----------------------------------------------------------------

    async def storyboard(
        self, caller: Caller, script: Any, model: str | None = None, seconds: float | None = None
    ) -> Storyboard:
        """Shots for `script` on `model`, `seconds` long in all if given, using the caller's
        characters where the script has them."""
        script = self._text(script, "script", None)
        check_script(script, self.settings.assistant_max_script_chars)
        spec = self.spec(model)
        await self._moderate(caller, "assistant.storyboard", script, "script")
        rows = await anyio.to_thread.run_sync(self.videos.characters.owned_by, caller.owner)
        characters = [CharacterChoice(row.id, row.name) for row in rows if row.reference_frames]
        detail: dict[str, Any] = {"model": model or DEFAULT_MODEL, "script_chars": len(script)}
        async with self._audited(caller, "assistant.storyboard", detail) as chat:
            board = await script_to_shots(
                chat,
                script,
                spec,
                characters=characters,
                seconds=seconds,
                max_chars=self.settings.max_prompt_chars,
                max_script_chars=self.settings.assistant_max_script_chars,
                max_total_seconds=self.settings.max_seconds,
            )
            detail.update(chunks=board.chunks, shots=len(board.shots))
        return board

    # --- conversations -----------------------------------------------------------------------

    async def turn(
        self, caller: Caller, conversation_id: str, content: Any, page: PageContext | None = None
    ) -> Turn:
        """Store the creator's message (before anything is generated: a crash loses nothing
        they wrote) and make ready the reply: `Turn.events()` streams it."""
        owner = caller.owner
        content = self._text(content, "content", self.settings.assistant_max_script_chars)
        page = page or PageContext()
        await self._moderate(caller, "assistant.turn", content, "content")
        conversation = await anyio.to_thread.run_sync(
            self.projects.get_conversation, owner, conversation_id
        )
        facts = await anyio.to_thread.run_sync(self._facts, caller, page, conversation)
        system = self._system(facts)
        answer = reply_tokens(self.backend)
        room = self.backend.context_tokens - budget.used(self.backend, [system]) - answer
        if budget.used(self.backend, [{"role": "user", "content": content}]) > room:
            raise InvalidRequestError(
                f"content is too long for the assistant's model ({self.backend.model} reads "
                f"{self.backend.context_tokens} tokens in all); shorten it",
                param="content",
            )
        context = page.model_dump(exclude_none=True, exclude_defaults=True) or None
        user = await anyio.to_thread.run_sync(
            lambda: self.projects.add_message(
                owner, conversation_id, "user", content, context=context
            )
        )
        detail: dict[str, Any] = {"conversation_id": conversation_id, "user_message_id": user.id}
        chat = Counted(self.backend)
        try:
            conversation = await anyio.to_thread.run_sync(
                self.projects.get_conversation, owner, conversation_id
            )

            async def save_summary(summary: str, through: int) -> None:
                await anyio.to_thread.run_sync(
                    self.projects.set_summary, owner, conversation_id, summary, through
                )

            history = await fit_history(chat, conversation, room, save_summary)
        except BaseException as err:
            self._record(caller, "assistant.turn", {**detail, "calls": chat.calls}, err)
            raise
        detail["folded"] = history.folded
        return Turn(
            self,
            caller,
            conversation_id,
            user,
            [system, *history.messages],
            facts,
            answer,
            chat,
            detail,
        )

    async def decide(
        self, caller: Caller, conversation_id: str, message_id: str, state: str
    ) -> MessageView:
        """Confirm or dismiss the action a message of this conversation proposed."""

        def decide() -> MessageView:
            conversation = self.projects.get_conversation(
                caller.owner, conversation_id, all_messages=True
            )
            if not any(m.id == message_id for m in conversation.messages):
                raise NotFoundError(f"no message with id {message_id!r}", param="message_id")
            return self.projects.set_action_state(caller.owner, message_id, state)

        return await anyio.to_thread.run_sync(decide)

    # --- shared ------------------------------------------------------------------------------

    def spec(self, model: str | None) -> ModelSpec:
        """The catalogue entry of a model name as a video request takes it (aliases too)."""
        return get_model(self.settings.resolve_model(model or DEFAULT_MODEL))

    def _system(self, facts: Facts) -> dict[str, str]:
        """The system message, shortened until it takes at most a third of the context."""
        scale = 1.0
        while True:
            message = {"role": "system", "content": system_message(facts, scale=scale)}
            if (
                scale < 0.05
                or budget.used(self.backend, [message]) <= self.backend.context_tokens // 3
            ):
                return message
            scale /= 2

    def _facts(self, caller: Caller, page: PageContext, conversation: ConversationView) -> Facts:
        video = None
        if page.video_id is not None:
            try:
                row = self.videos.get(caller, page.video_id)
            except NotFoundError as err:
                err.param = "context.video_id"
                raise
            params = row.params or {}
            video = VideoFacts(
                id=row.id,
                status=VideoStatus(row.status).value,
                kind=VideoKind(row.kind).value,
                prompt=row.prompt,
                model=row.model,
                size=row.size,
                seconds=row.seconds,
                settings={k: params[k] for k in SETTINGS if params.get(k) is not None},
                rating=ratings.word(row.rating),
                rating_note=row.rating_note,
                original_prompt=row.original_prompt,
            )
        name, notes = None, ""
        if conversation.project_id is not None:
            try:
                project = self.projects.get_project(caller.owner, conversation.project_id)
                name, notes = project.name, project.notes
            except NotFoundError:
                pass  # the project was deleted since: the conversation stands on its own
        liked = tuple(self.projects.liked_prompts(caller.owner, 5))
        try:
            longest = limits(self.spec(page.model), None, self.settings.max_seconds).max_seconds
        except MoviolaError:  # a model this server does not know: the default's shots
            longest = limits(self.spec(None), None, self.settings.max_seconds).max_seconds
        return Facts(page, video, name, notes, liked, longest)

    async def _moderate(self, caller: Caller, kind: str, text: str, param: str) -> None:
        await anyio.to_thread.run_sync(
            lambda: self.videos.moderate(caller, kind, text, param=param)
        )

    @staticmethod
    def _text(value: Any, param: str, max_chars: int | None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidRequestError(f"{param} is required", param=param)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError(
                f"{param} is not valid Unicode text (it holds a lone surrogate)", param=param
            ) from None
        if max_chars is not None and len(value) > max_chars:
            raise InvalidRequestError(
                f"{param} is {len(value):,} characters; the limit is {max_chars:,}", param=param
            )
        return value

    @asynccontextmanager
    async def _audited(
        self, caller: Caller, action: str, detail: dict[str, Any]
    ) -> AsyncIterator[Counted]:
        """The chat backend, counting calls, for one assistant call that is audited with its
        outcome when it ends (however it ends)."""
        chat = Counted(self.backend)
        try:
            yield chat
        except BaseException as err:
            self._record(caller, action, {**detail, "calls": chat.calls}, err)
            raise
        self._record(caller, action, {**detail, "calls": chat.calls}, None)

    def _record(
        self, caller: Caller, action: str, detail: dict[str, Any], err: BaseException | None
    ) -> None:
        # Written here and now (one small insert), not off the loop: a client that went away
        # cancels the request, and an audit write awaited then would never happen.
        if not self.settings.audit:
            return
        if err is None:
            outcome = "ok"
        elif isinstance(err, MoviolaError):
            outcome = err.code
        elif isinstance(err, (GeneratorExit, anyio.get_cancelled_exc_class())):
            outcome = "cancelled"
        else:
            outcome = "failed"
        audit.record(
            self.sessions, actor=caller.owner, action=action, detail={**detail, "outcome": outcome}
        )


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Done:
    message: MessageView  # the stored reply, with any proposed action


class Turn:
    """A conversation turn made ready: the creator's message is stored; `events()` streams
    the reply (`Delta`s), then stores it with its proposed action and ends with `Done`."""

    def __init__(
        self,
        assistant: Assistant,
        caller: Caller,
        conversation_id: str,
        user: MessageView,
        messages: list[dict[str, Any]],
        facts: Facts,
        max_tokens: int,
        chat: Counted,
        detail: dict[str, Any],
    ):
        self.assistant = assistant
        self.caller = caller
        self.conversation_id = conversation_id
        self.user = user
        self.messages = messages
        self.facts = facts
        self.max_tokens = max_tokens
        self.chat = chat
        self.detail = detail

    async def events(self) -> AsyncGenerator[Delta | Done, None]:
        assistant, owner = self.assistant, self.caller.owner
        detail = self.detail
        try:
            parts: list[str] = []
            stream = self.chat.stream(self.messages, max_tokens=self.max_tokens)
            try:
                async for delta in stream:
                    parts.append(delta)
                    yield Delta(delta)
            finally:
                # At once, not when the garbage collector gets to it: a reader that went away
                # closes the backend's connection, which stops the model writing.
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()
            reply = "".join(parts)
            action = await propose_or_none(
                self.chat,
                self.facts,
                self.user.content,
                reply,
                max_chars=assistant.settings.max_prompt_chars,
            )
            stored = await anyio.to_thread.run_sync(
                lambda: assistant.projects.add_message(
                    owner, self.conversation_id, "assistant", reply, action=action
                )
            )
            detail = {**detail, "message_id": stored.id, "action": action and action["type"]}
        except BaseException as err:
            assistant._record(
                self.caller, "assistant.turn", {**detail, "calls": self.chat.calls}, err
            )
            raise
        assistant._record(self.caller, "assistant.turn", {**detail, "calls": self.chat.calls}, None)
        yield Done(stored)

    async def reply(self) -> MessageView:
        """The whole reply, stored."""
        async for event in self.events():
            if isinstance(event, Done):
                return event.message
        raise AssertionError("a turn always ends with Done")
