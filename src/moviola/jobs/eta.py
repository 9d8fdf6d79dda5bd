"""How long a job has left: from measured history, and from the job's own pace.

Every completed job's row keeps how long each stage took (`result.timings`: loading, prompt
encoding, denoising, decoding, sound, writing, signing) and when it started and ended; what
the stages do not cover (reading its inputs, hashing and storing its files) counts as one more
stage, `other`. An estimate for a job starts from the runs of the **same model**:

- runs of the same shape (kind, render pixels, frame count, step count): the median of each
  stage over the most recent of them;
- otherwise the nearest runs by amount of work, each stage scaled to this job's shape:
  denoising by steps × pixels × frames, decoding and writing by pixels × frames, the rest as
  measured; the median of each;
- no run of the model yet: no estimate (a guess from another model would be the 4–10× error
  this replaces).

A running job is then estimated from where its `live` state (`moviola.jobs.live`) says it is:
while denoising, from its **own** seconds per step so far; the stages after it from history,
scaled by how much faster or slower its steps are than history's (the machine may be busier
or idler now than then: a shared GPU, a CPU with other work).
A queued job waits for the jobs ahead of it: the running ones' remaining time and the queued
ones' expected time are laid out on the busy workers, earliest free first, and its own run
follows. A job with something unknown ahead of it has no estimate either.
"""

from __future__ import annotations

import heapq
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from moviola.store.models import Video, VideoStatus

RECENT_RUNS = 7  # of one shape: recent runs say most about this machine now
NEIGHBOURS = 3  # runs of other shapes an estimate is scaled from
PRIOR_STEPS = 4  # how many of a run's own steps history's pace weighs as
HISTORY_ROWS = 100  # recent completed rows read per estimate
AHEAD_ROWS = 200  # jobs ahead of a queued one laid out; further back, no estimate
PER_SEGMENT = ("encoding_prompt", "denoising", "decoding")
AFTER_SEGMENTS = ("sound", "writing", "signing", "other")

Stages = dict[str, float]


@dataclass(frozen=True)
class Shape:
    """What a job renders, as far as its time goes."""

    model: str
    kind: str
    pixels: int
    frames: int
    steps: int

    def scale(self, stage: str, other: Shape) -> float:
        """How many times longer `stage` takes at this shape than at `other`."""
        if stage == "denoising":
            return (self.steps * self.pixels * self.frames) / max(
                1, other.steps * other.pixels * other.frames
            )
        if stage in ("decoding", "writing"):
            return (self.pixels * self.frames) / max(1, other.pixels * other.frames)
        return 1.0

    def distance(self, other: Shape) -> float:
        """How unlike `other`'s work this shape's is (0: the same)."""
        work = abs(math.log(max(1e-9, self.scale("denoising", other))))
        return work + (0.0 if self.kind == other.kind else 1.0)


@dataclass(frozen=True)
class Run:
    """One completed job: its shape and the seconds of each stage (`other` included)."""

    shape: Shape
    stages: Stages


def planned_shape(row: Video) -> Shape | None:
    """The shape a job will render, from its request (its own `result` once it has one);
    None for a model outside the catalogue."""
    from moviola.engine import get_model, parse_size
    from moviola.engine.distilled import route_for
    from moviola.engine.sizes import frames_for_seconds, render_size
    from moviola.jobs.fields import request_fields

    try:
        spec = get_model(row.engine_model)
        fields = request_fields(row.params or {})
        width, height = render_size(spec, parse_size(row.size) if row.size else None)
        frames = frames_for_seconds(float(row.seconds), int(fields.get("fps") or spec.fps))
    except Exception:  # a folder model, or a row this cannot read: no estimate
        return None
    steps = fields.get("steps")
    if steps is None:
        route = route_for(spec) if fields.get("speed") == "fast" else None
        steps = route.steps if route is not None else spec.default_steps
    return Shape(row.engine_model, str(row.kind), width * height, frames, int(steps))


def run_of(row: Any) -> Run | None:
    """A completed row (or the columns of it that `history` reads) as a run of history;
    None where it lacks what that takes."""
    result = row.result or {}
    timings = result.get("timings") or {}
    size = list(result.get("render_size") or [])
    if not timings or len(size) != 2 or not row.started_at or not row.completed_at:
        return None
    if not result.get("frames") or not result.get("steps"):
        return None
    shape = Shape(
        row.engine_model,
        str(row.kind),
        int(size[0]) * int(size[1]),
        int(result["frames"]),
        int(result["steps"]),
    )
    stages = {name: max(0.0, float(seconds)) for name, seconds in timings.items()}
    stages["other"] = max(0.0, row.completed_at - row.started_at - sum(stages.values()))
    return Run(shape, stages)


class History:
    """Recent runs, newest first, and what they say of a shape."""

    def __init__(self, runs: Iterable[Run]):
        self.runs = list(runs)

    def expected(self, shape: Shape | None) -> Stages | None:
        """The seconds each stage of a job of `shape` is expected to take; None when no run
        of its model is known."""
        if shape is None:
            return None
        same_model = [run for run in self.runs if run.shape.model == shape.model]
        chosen = [run for run in same_model if run.shape == shape][:RECENT_RUNS]
        if not chosen:
            chosen = sorted(same_model, key=lambda run: shape.distance(run.shape))[:NEIGHBOURS]
        if not chosen:
            return None
        names = {name for run in chosen for name in run.stages}
        return {
            name: statistics.median(
                run.stages.get(name, 0.0) * shape.scale(name, run.shape) for run in chosen
            )
            for name in names
        }


def history(session: Session, models: Iterable[str]) -> History:
    """The recent completed runs of `models` (one query, through the model's index)."""
    wanted = sorted(set(models))
    if not wanted:
        return History([])
    rows = session.execute(
        select(Video.engine_model, Video.kind, Video.result, Video.started_at, Video.completed_at)
        .where(
            Video.engine_model.in_(wanted),
            Video.status == VideoStatus.COMPLETED,
            Video.started_at.is_not(None),
        )
        .order_by(Video.seq.desc())
        .limit(HISTORY_ROWS)
    ).all()
    return History(run for run in map(run_of, rows) if run is not None)


def pace(live: dict[str, Any]) -> float | None:
    """This job's own seconds per denoising step, once it took one."""
    value = live.get("pace")
    return float(value) if value is not None and value > 0 else None


def remaining(row: Video, expected: Stages | None, now: float) -> float | None:
    """Seconds until `row` is done: a queued job's whole run, or what a running one has left
    from where its `live` state says it is. None when there is nothing to go by."""
    if row.status == VideoStatus.QUEUED:
        return sum(expected.values()) if expected is not None else None
    if row.status != VideoStatus.IN_PROGRESS or expected is None:
        return None
    live = row.live
    if not live:  # claimed; nothing reported yet
        return max(0.0, sum(expected.values()) - (now - (row.started_at or now)))
    stage = live.get("stage")
    spent = max(0.0, now - float(live.get("stage_at") or now))
    segments = max(1, int(live.get("segments") or 1))
    later = max(0, segments - int(live.get("segment") or 0) - 1)
    steps = int(live.get("steps") or 0)
    own = pace(live)
    usual = expected.get("denoising", 0.0) / max(1, segments * steps)
    if own is not None and usual > 0:
        # The first steps say little (one slow step, a moment of contention): history counts
        # as a few steps' worth of evidence beside them.
        taken = int(live.get("step") or 0) if stage == "denoising" else steps
        own = (usual * PRIOR_STEPS + own * taken) / (PRIOR_STEPS + taken)
    # How this run's steps compare with history's: the stages still to come run on the same
    # machine, as busy (or as idle) as it is now.
    speed = min(10.0, max(0.1, own / usual)) if own is not None and usual > 0 else 1.0

    def guess(name: str, part: float = 1.0) -> float:
        return expected.get(name, 0.0) * part * speed

    each = 1 / segments
    denoise = own * steps if own is not None and steps else guess("denoising", each)
    segment = guess("encoding_prompt", each) + denoise + guess("decoding", each)
    after = sum(guess(name) for name in AFTER_SEGMENTS)
    rest_of_run = later * segment + after
    if stage in ("loading", "starting", "queued"):
        left = max(0.0, guess("loading") - spent) + segments * segment + after
    elif stage == "encoding_prompt":
        left = max(0.0, guess("encoding_prompt", each) - spent)
        left += denoise + guess("decoding", each) + rest_of_run
    elif stage == "denoising":
        if own is not None and live.get("step_at") is not None:
            since = max(0.0, now - float(live["step_at"]))
            left = max(0.0, own * (steps - int(live.get("step") or 0)) - since)
        else:
            left = max(0.0, guess("denoising", each) - spent)
        left += guess("decoding", each) + rest_of_run
    elif stage == "decoding":
        left = max(0.0, guess("decoding", each) - spent) + rest_of_run
    elif stage in AFTER_SEGMENTS:
        tail = AFTER_SEGMENTS[AFTER_SEGMENTS.index(stage) :]
        left = max(0.0, guess(stage) - spent) + sum(guess(name) for name in tail[1:])
    else:  # "done": signed, hashed and stored next
        left = max(0.0, guess("signing") + guess("other") - spent)
    return left


def estimates(
    session: Session, rows: Sequence[Video], now: float | None = None
) -> dict[str, float]:
    """Seconds left for each of `rows` that is queued or running, where they can be told.
    Two queries at most: the models' history, and the jobs ahead of the queued ones."""
    now = time.time() if now is None else now
    active = [row for row in rows if row.status in (VideoStatus.QUEUED, VideoStatus.IN_PROGRESS)]
    if not active:
        return {}
    queued = [row for row in active if row.status == VideoStatus.QUEUED]
    ahead: list[Video] = []
    if queued:
        last = max(row.seq for row in queued)
        ahead = list(
            session.execute(
                select(Video)
                .where(
                    or_(
                        Video.status == VideoStatus.IN_PROGRESS,
                        and_(Video.status == VideoStatus.QUEUED, Video.seq <= last),
                    ),
                    Video.deleted_at.is_(None),
                )
                .order_by(Video.seq)
                .limit(AHEAD_ROWS)
            ).scalars()
        )
    everyone = {row.id: row for row in [*ahead, *active]}
    shapes = {job_id: planned_shape(row) for job_id, row in everyone.items()}
    known = history(session, {shape.model for shape in shapes.values() if shape is not None})
    expected = {job_id: known.expected(shape) for job_id, shape in shapes.items()}
    left = {
        job_id: remaining(row, expected[job_id], now)
        for job_id, row in everyone.items()
        if row.status == VideoStatus.IN_PROGRESS
    }
    if queued:
        left.update(_queue_times(ahead, expected, left, {row.id for row in queued}))
    found = {row.id: left.get(row.id) for row in active}
    return {job_id: seconds for job_id, seconds in found.items() if seconds is not None}


def _queue_times(
    ahead: list[Video],
    expected: dict[str, Stages | None],
    running_left: dict[str, float | None],
    wanted: set[str],
) -> dict[str, float | None]:
    """When each queued job in `wanted` will be done: the queue (oldest first) laid out on
    as many workers as are busy now (at least one), each job starting on the first free."""
    running = [row for row in ahead if row.status == VideoStatus.IN_PROGRESS]
    waiting = sorted(
        (row for row in ahead if row.status == VideoStatus.QUEUED), key=lambda row: row.seq
    )
    if len(ahead) >= AHEAD_ROWS and wanted - {row.id for row in waiting}:
        return {}  # some are further back than was read: too far to tell
    free: list[float] = []
    for row in running:
        left = running_left.get(row.id)
        if left is None:
            return {}  # something unknown ahead of every queued job
        free.append(left)
    free = free or [0.0]
    heapq.heapify(free)
    done: dict[str, float | None] = {}
    for row in waiting:
        own = expected.get(row.id)
        if own is None:
            break  # from here on, something unknown is ahead
        finish = heapq.heappop(free) + sum(own.values())
        heapq.heappush(free, finish)
        if row.id in wanted:
            done[row.id] = finish
    return done
