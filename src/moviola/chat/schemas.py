"""The body of `POST /v1/chat/completions`, as OpenAI defines it, checked once for the API and
the chat worker alike.

Only what Moviola acts on is taken: a field it would ignore (tools, logprobs, n > 1, penalties,
images) is refused with `unknown_parameter` or `invalid_value` rather than dropped unread.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moviola.errors import InvalidRequestError

_STRICT = ConfigDict(extra="forbid")


class ChatTextPart(BaseModel):
    model_config = _STRICT
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = _STRICT
    # `developer` is OpenAI's newer name for `system`.
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ChatTextPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatJsonSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None  # always strict here: decoding follows the schema exactly


class ChatResponseFormat(BaseModel):
    model_config = _STRICT
    type: Literal["text", "json_object", "json_schema"]
    json_schema: ChatJsonSchema | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.type == "json_schema":
            if self.json_schema is None:
                raise InvalidRequestError(
                    "response_format of type json_schema needs a json_schema",
                    param="response_format.json_schema",
                )
            return {
                "type": "json_schema",
                "json_schema": {"name": self.json_schema.name, "schema": self.json_schema.schema_},
            }
        return {"type": self.type}


class ChatStreamOptions(BaseModel):
    model_config = _STRICT
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = _STRICT

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: ChatStreamOptions | None = None
    response_format: ChatResponseFormat | None = None
    n: int | None = Field(default=None, ge=1, le=1)  # one choice per request
    user: str | None = Field(default=None, max_length=256)  # the end user, for the audit log

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if len(stops) > 4:
            raise InvalidRequestError("stop takes at most 4 strings", param="stop")
        return stops

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def forwarded(self) -> dict[str, Any]:
        """The request as sent on to a chat server: everything but `model` and `stream`
        (the backend names its own model and chooses how to ask)."""
        return self.model_dump(exclude_none=True, by_alias=True, exclude={"model", "stream"})


def parse_request(body: Any) -> ChatCompletionRequest:
    """A request body → the request, or InvalidRequestError naming the first bad field."""
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    try:
        request = ChatCompletionRequest.model_validate(body)
    except ValidationError as err:
        raise _invalid(err) from None
    request.stop_strings()
    return request


def _invalid(err: ValidationError) -> InvalidRequestError:
    first = err.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    # Drop pydantic's union-branch names ("str", "list[ChatTextPart]") from the field's path.
    param = ".".join(p for p in loc if not p.startswith(("str", "list[", "function-"))) or None
    kind = first.get("type")
    if kind == "extra_forbidden":
        return InvalidRequestError(
            f"unknown field {param!r}: /v1/chat/completions takes model, messages, max_tokens, "
            "max_completion_tokens, temperature, top_p, seed, stop, stream, stream_options, "
            "response_format, n (1) and user",
            param=param,
            code="unknown_parameter",
        )
    if kind == "missing":
        return InvalidRequestError(f"{param} is required", param=param, code="invalid_value")
    return InvalidRequestError(
        f"invalid {param}: {first.get('msg')}", param=param, code="invalid_value"
    )
