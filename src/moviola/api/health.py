"""`/healthz` for load balancers and service managers, `/metrics` for Prometheus.

Health is "can this server do its job": the database answers, (when it runs workers) at
least one worker process is alive, and the data dir's disk has room for new work. The
assistant's chat server is reported beside it, without changing the status: videos are made
without it. Metrics are
read from the database at scrape time, so they count the work of every worker, including ones
on other machines; stage durations are accumulated from completed rows as they appear
(completed rows are never changed again, so the histograms only grow, as Prometheus expects).

Both are public, as probes and scrapers send no key; what names one video (the job each worker
holds) shows only to a request the API itself would answer.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from moviola.api.auth import identify
from moviola.config import Settings
from moviola.store.models import Video, VideoStatus

router = APIRouter(tags=["operations"])

STATUSES = tuple(VideoStatus)
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Rows completed up to this long before the newest one seen are read again, in case a slower
# transaction committed them late; ids already counted are skipped.
OVERLAP_S = 300.0
MB = 2**20  # as the worker counts its reserve


class WorkerHealth(BaseModel):
    name: str
    pid: int | None
    alive: bool
    restarts: int
    current_job: str | None = None


class Health(BaseModel):
    status: str  # ok | degraded | unavailable
    database: str
    workers: list[WorkerHealth]
    queued: int | None
    in_progress: int | None
    reasons: list[str]
    # With `executor = "ray"`: Ray's address, whether it answers, whether this replica dispatches.
    executor: dict[str, Any] | None = None
    # The assistant's chat server: informative only, as videos are made without it.
    assistant: dict[str, Any] | None = None


def check(request: Request) -> tuple[int, dict[str, Any]]:
    state = request.app.state
    reasons: list[str] = []
    no_room = _no_room(state.settings)
    if no_room:
        reasons.append(no_room)
    counts: dict[str, int] = {}
    try:
        with state.sessions() as session:
            session.execute(text("SELECT 1"))
            counts = _counts(session)
        database = "ok"
    except Exception as err:
        database = f"unreachable: {type(err).__name__}"
        reasons.append(f"the database does not answer ({type(err).__name__})")

    workers: list[WorkerHealth] = []
    try:
        workers = [
            WorkerHealth(
                name=w.name,
                pid=w.pid,
                alive=w.alive,
                restarts=w.restarts,
                current_job=getattr(w, "current_job", None),
            )
            for w in state.background.supervisor.status()
        ]
    except Exception as err:
        reasons.append(f"the worker status is unknown ({type(err).__name__})")
    if any(w.current_job for w in workers) and not _sees_jobs(request):
        for worker in workers:
            worker.current_job = None
    alive = sum(w.alive for w in workers)
    expected = state.settings.workers
    executor = None
    if state.settings.executor == "ray":
        # Actors live on the cluster, not here: a Ray that does not answer leaves jobs queued
        # (degraded), it does not stop this replica from taking requests.
        executor, expected = state.background.supervisor.health(), 0
        reasons.extend(executor["reasons"])
    if expected > 0 and alive == 0:
        reasons.append("no worker process is alive")
    elif alive < expected:
        reasons.append(f"{expected - alive} worker(s) restarting")

    unavailable = database != "ok" or (expected > 0 and alive == 0)
    status = "unavailable" if unavailable else "degraded" if reasons else "ok"
    body = Health(
        status=status,
        database=database,
        workers=workers,
        queued=counts.get("queued", 0) if database == "ok" else None,
        in_progress=counts.get("in_progress", 0) if database == "ok" else None,
        reasons=reasons,
        executor=executor,
        assistant=state.chat.health(),
    )
    # A full disk still serves reads, but every create fails: balancers should send work
    # elsewhere, and service managers alert.
    return (503 if unavailable or no_room else 200), body.model_dump()


def _no_room(settings: Settings) -> str | None:
    """Why the data dir cannot take new work (under `min_free_disk_bytes` free), or None."""
    try:
        free = shutil.disk_usage(settings.data_dir).free
    except OSError as err:
        return f"the data dir cannot be read ({type(err).__name__}: {err.strerror})"
    need = settings.min_free_disk_bytes
    if free >= need:
        return None
    return f"the data dir's disk is full: {free // MB} MB free, {need // MB} MB needed"


def _sees_jobs(request: Request) -> bool:
    """Whether `request` is one the API would answer (a valid key, or keyless and local)."""
    scheme, secret = get_authorization_scheme_param(request.headers.get("authorization"))
    try:
        identify(request, secret if scheme.lower() == "bearer" else "")
    except Exception:  # refused, or a database that cannot vouch for the key
        return False
    return True


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Cannot serve: the body says why."}},
)
def healthz(request: Request) -> JSONResponse:
    status, body = check(request)
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class Collector:
    """Prometheus collector reading the database (and the supervisor) at each scrape."""

    def __init__(self, sessions: sessionmaker[Session], supervisor: Any):
        self.sessions = sessions
        self.supervisor = supervisor
        self._lock = threading.Lock()
        self._stages: dict[str, list[float]] = {}  # stage → [bucket counts…, sum, count]
        self._counted: dict[str, float] = {}  # recently counted ids → completed_at
        self._newest = 0.0

    def collect(self) -> Iterator[Any]:
        with self.sessions() as session:
            counts = _counts(session)
            self._observe(session)
        videos = GaugeMetricFamily(
            "moviola_videos", "Videos (not deleted) by status.", labels=["status"]
        )
        for status in STATUSES:
            videos.add_metric([status], counts.get(status, 0))
        yield videos
        yield GaugeMetricFamily(
            "moviola_queue_depth", "Jobs waiting for a worker.", value=counts.get("queued", 0)
        )

        statuses = self.supervisor.status()
        yield GaugeMetricFamily(
            "moviola_workers_alive",
            "Worker processes running.",
            value=sum(1 for w in statuses if w.alive),
        )
        restarts = CounterMetricFamily(
            "moviola_worker_restarts", "Worker processes restarted after dying."
        )
        restarts.add_metric([], self.supervisor.restarts)
        yield restarts

        stages = HistogramMetricFamily(
            "moviola_stage_seconds",
            "Time completed jobs spent in each stage (queued: waiting for a worker).",
            labels=["stage"],
        )
        with self._lock:
            for stage, values in sorted(self._stages.items()):
                cumulative = [(str(b), values[i]) for i, b in enumerate(BUCKETS)]
                cumulative.append(("+Inf", values[len(BUCKETS) + 1]))
                stages.add_metric([stage], cumulative, sum_value=values[len(BUCKETS)])
        yield stages

    def _observe(self, session: Session) -> None:
        with self._lock:
            since = self._newest - OVERLAP_S if self._newest else None
            query = select(
                Video.id, Video.created_at, Video.started_at, Video.completed_at, Video.result
            ).where(Video.status == VideoStatus.COMPLETED, Video.completed_at.is_not(None))
            if since is not None:
                query = query.where(Video.completed_at >= since)
            for video_id, created, started, completed, result in session.execute(query):
                if video_id in self._counted:
                    continue
                self._counted[video_id] = completed
                self._newest = max(self._newest, completed)
                if started is not None:
                    self._add("queued", max(0.0, started - created))
                for stage, seconds in ((result or {}).get("timings") or {}).items():
                    self._add(stage, float(seconds))
            floor = self._newest - OVERLAP_S
            self._counted = {k: v for k, v in self._counted.items() if v >= floor}

    def _add(self, stage: str, seconds: float) -> None:
        # Cumulative bucket counts, then +Inf count at the end: [b0…bn, sum, count].
        values = self._stages.setdefault(stage, [0.0] * (len(BUCKETS) + 2))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                values[i] += 1
        values[len(BUCKETS)] += seconds
        values[len(BUCKETS) + 1] += 1


def _counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Video.status, func.count()).where(Video.deleted_at.is_(None)).group_by(Video.status)
    ).all()
    return {status: count for status, count in rows}


def registry(sessions: sessionmaker[Session], supervisor: Any) -> CollectorRegistry:
    metrics = CollectorRegistry(auto_describe=False)
    metrics.register(Collector(sessions, supervisor))
    return metrics
