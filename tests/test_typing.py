"""No `Any` on the public entry points: the service the API and the Studio call, the queue the
workers and the dispatcher call, rendering and the engine. Each parameter and each return of
these is annotated, and not with a bare `Any` (nor `Any | None`): a typed argument inside,
such as `dict[str, Any]`, is fine."""

from __future__ import annotations

import ast
import inspect
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from moviola.engine import Engine
from moviola.jobs import queue
from moviola.jobs.service import VideoService
from moviola.render import files


def _public_methods(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, staticmethod | classmethod):
            attr = attr.__func__
        elif isinstance(attr, property) and attr.fget is not None:
            attr = attr.fget
        if inspect.isfunction(attr):
            yield f"{cls.__module__}.{cls.__qualname__}.{name}", attr


def _public_functions(module: types.ModuleType) -> Iterator[tuple[str, Callable[..., Any]]]:
    for name, func in sorted(vars(module).items()):
        public = not name.startswith("_") and inspect.isfunction(func)
        if public and func.__module__ == module.__name__:
            yield f"{module.__name__}.{name}", func


def _entry_points() -> list[tuple[str, Callable[..., Any]]]:
    return [
        *_public_methods(VideoService),
        *_public_functions(queue),
        ("moviola.render.files.render", files.render),
        ("moviola.render.files.seal", files.seal),
        ("moviola.engine.Engine.generate", Engine.generate),
    ]


ENTRY_POINTS = _entry_points()


def _is_any(hint: object) -> bool:
    """`Any`, or a union with `Any` in it (`Any | None`, `Optional[Any]`)."""
    if hint is Any:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(arg is Any for arg in typing.get_args(hint))
    return False


def _is_any_text(annotation: str) -> bool:
    """The same, for an annotation that cannot be evaluated (a name only imported for
    type checkers): read as source."""
    node = ast.parse(annotation, mode="eval").body

    def named(n: ast.expr, names: set[str]) -> bool:
        return (isinstance(n, ast.Name) and n.id in names) or (
            isinstance(n, ast.Attribute) and n.attr in names
        )

    def members(n: ast.expr) -> Iterator[ast.expr]:
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):
            yield from members(n.left)
            yield from members(n.right)
        elif isinstance(n, ast.Subscript) and named(n.value, {"Optional", "Union"}):
            inner = n.slice
            yield from inner.elts if isinstance(inner, ast.Tuple) else [inner]
        else:
            yield n

    return any(named(member, {"Any"}) for member in members(node))


def loose_annotations(func: Callable[..., Any]) -> list[str]:
    """What of `func`'s signature is unannotated or `Any`, as readable lines."""
    raw = inspect.get_annotations(func)
    try:
        hints: dict[str, object] = typing.get_type_hints(func)
        is_any: Callable[[Any], bool] = _is_any
    except NameError:
        hints, is_any = dict(raw), lambda text: isinstance(text, str) and _is_any_text(text)
    problems = []
    parameters = list(inspect.signature(func).parameters.values())
    if parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]
    for parameter in parameters:
        star = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
        label = f"parameter {star.get(parameter.kind, '')}{parameter.name}"
        if parameter.name not in hints:
            problems.append(f"{label} is not annotated")
        elif is_any(hints[parameter.name]):
            problems.append(f"{label} is annotated {raw.get(parameter.name)!s}")
    if "return" not in hints:
        problems.append("the return is not annotated")
    elif is_any(hints["return"]):
        problems.append(f"the return is annotated {raw.get('return')!s}")
    return problems


def test_the_entry_points_are_found():
    names = {name for name, _ in ENTRY_POINTS}
    assert "moviola.jobs.service.VideoService.create" in names
    assert "moviola.jobs.queue.enqueue" in names
    assert "moviola.jobs.queue.claim" in names


@pytest.mark.parametrize(("name", "func"), ENTRY_POINTS, ids=[name for name, _ in ENTRY_POINTS])
def test_no_any_on_public_entry_points(name: str, func: Callable[..., Any]):
    problems = loose_annotations(func)
    assert not problems, f"{name}: " + "; ".join(problems)


def test_the_check_sees_any():
    def loose(a, b: Any, c: int | Any = 0, *rest: Any) -> Any: ...

    def tight(a: dict[str, Any], b: list[int] | None = None) -> int: ...

    assert loose_annotations(loose) == [
        "parameter a is not annotated",
        "parameter b is annotated Any",
        "parameter c is annotated int | Any",
        "parameter *rest is annotated Any",
        "the return is annotated Any",
    ]
    assert loose_annotations(tight) == []
    assert _is_any_text("Any | None")
    assert _is_any_text("typing.Optional[Any]")
    assert not _is_any_text("dict[str, Any]")
