"""The dispatcher: hands queued jobs to Ray actors and brings their results home.

Only the elected replica runs one (see `election`). Each round it
- polls the actors that work for it: progress goes to the job's row (which also renews the
  lease, and answers whether the job was cancelled or deleted meanwhile); a finished job's
  files come back through Ray's object store and are stored atomically in the blob folder,
  then the row is completed; a failed one is failed or re-queued as a local worker's would be;
- hands the oldest queued job to a free actor, preferably one that already holds its model;
- now and then re-queues jobs whose lease ran out and refreshes what each actor holds.

A job is claimed under a lease owner that names its actor (`moviola-render-0.1a2b3c`), so a
dispatcher that takes over finds out from the rows which actor has which job, asks that actor,
and adopts the attempt, or collects its finished result, instead of dispatching it again. An
actor that no longer knows the attempt (its process died and Ray restarted it) lost it: the
job goes back to the queue, using one of its attempts.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from moviola import media
from moviola.config import Settings
from moviola.jobs import queue
from moviola.jobs.ray.actor import ACTOR_PREFIX, actor_name, actor_of, spawn
from moviola.jobs.runner import JobRunner
from moviola.render.files import RenderedFiles, RenderedShot, RenderSummary
from moviola.render.frame_check import Decision
from moviola.render.outcome import Failure, classify
from moviola.render.stamp import Stamp
from moviola.store.blobs import Blobs, shot_variant, variant_path
from moviola.store.models import Video, VideoStatus

log = logging.getLogger("moviola.dispatcher")

PROGRESS_S = 0.25  # how often a busy actor reports progress
IDLE_S = 0.05  # how soon a new job is seen while an actor is free
LEASE_RENEW_S = 5.0  # an actor silent this long: its job's lease is renewed regardless
CALL_TIMEOUT_S = 30.0  # starting a job, collecting its files
TAKEOVER_S = 5.0  # what the actors say within this is what a takeover starts from
SILENT_S = 120.0  # an actor that answered nothing for this long has lost its job
HOUSEKEEPING_S = 5.0


@dataclass
class InFlight:
    job_id: str
    owner: str  # the lease owner: the actor's name and this attempt's token
    actor: str
    stamp: Stamp | None = None  # how to sign the video once it is stored here
    stopping: bool = False  # cancelled or deleted: waiting for the actor to stop
    answered_at: float = 0.0
    waiting: Any = None  # the outstanding `wait` call to its actor
    renewed_at: float = 0.0
    reported: Any = None  # the progress and stage last written to the row


class Deposed(Exception):
    """This dispatcher no longer holds the election: it must stop at once."""


def choose_actor(model: str, free: list[str], loaded: dict[str, list[str]]) -> str | None:
    """Model affinity: a free actor that holds `model`, else one that holds nothing (loading
    there evicts nobody's pipeline), else any free one."""
    if not free:
        return None
    for name in free:
        if model in loaded.get(name, []):
            return name
    for name in free:
        if not loaded.get(name):
            return name
    return free[0]


class RayDispatcher:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        blobs: Blobs,
        *,
        fence: queue.Fence | None = None,
        still_leading: Callable[[], bool] | None = None,
    ):
        """`fence`: a condition completions carry, true only while this dispatcher holds the
        election; `still_leading`: asks the election now (see `election.Election`)."""
        import ray

        self.ray = ray
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        # Prepares and finishes jobs exactly as a local worker does.
        self.runner = JobRunner(settings, sessions, blobs)
        self.options = actor_options(settings)
        self.actors: dict[str, Any] = {}
        self.loaded: dict[str, list[str]] = {}
        self.in_flight: dict[str, InFlight] = {}  # job id → attempt
        self._lost_on: dict[str, str] = {}  # job id → the actor it was lost on, last
        self._down: set[str] = set()  # actors that did not answer; retried at housekeeping
        self._asked: dict[Any, str] = {}  # outstanding `info` calls → their actor
        self._housekept = 0.0
        self._fence = fence
        self._still_leading = still_leading or (lambda: True)

    # --- taking over --------------------------------------------------------------------------

    def take_over(self) -> None:
        """Find (or make) the actors, then adopt every job a previous dispatcher left with them."""
        for index in range(self.settings.ray_actors):
            name = actor_name(index)
            self.actors[name] = spawn(name, self.settings.ray_namespace, self.options)
        infos = self._infos(TAKEOVER_S)
        with self.sessions() as session:
            rows = session.execute(
                select(Video.id, Video.lease_owner).where(
                    Video.status == VideoStatus.IN_PROGRESS,
                    Video.lease_owner.like(f"{ACTOR_PREFIX}%"),
                )
            ).all()
        held = {job_id: owner for job_id, owner in rows if owner is not None}
        for job_id, owner in held.items():
            name = actor_of(owner) or owner
            tasks = {t["job_id"]: t for t in infos.get(name, {}).get("tasks", [])}
            task = tasks.get(job_id)
            if name in self.actors and task is not None and task["attempt"] == owner:
                self.in_flight[job_id] = InFlight(job_id, owner, name, answered_at=time.time())
                log.info("adopted %s from %s (%s)", job_id, name, task["state"])
            elif name in infos or name not in self.actors:
                # The actor answered without it (restarted), or is no longer one of ours.
                self._lost(job_id, owner, f"actor {name} no longer has the job")
            else:
                # Its actor has not answered yet (busy, starting, or on a node that went):
                # adopted all the same; its first answer says whether it still has the job,
                # and silence for `SILENT_S` loses it.
                self.in_flight[job_id] = InFlight(job_id, owner, name, answered_at=time.time())
                log.info("adopted %s from %s (not answering yet)", job_id, name)
        # Their leases may have run out while the previous dispatcher was gone, or while this
        # takeover waited for the actors: renewed now, before anything re-queues them.
        for flight in self.in_flight.values():
            queue.heartbeat(self.sessions, flight.job_id, flight.owner)
            flight.renewed_at = time.time()
        # Not placed yet (no free GPU for it) or still starting: no job goes there until it
        # answers, which housekeeping keeps asking.
        self._down = set(self.actors) - set(infos)
        self._housekept = time.monotonic()  # the actors were just asked
        for name, info in infos.items():
            self.loaded[name] = info["loaded_models"]
            for task in info.get("tasks", []):
                if (
                    self.in_flight.get(task["job_id"], InFlight("", "", "")).owner
                    != task["attempt"]
                ):
                    # Finished or running for an attempt that is over: nobody will collect it.
                    self._call(self.actors[name].cancel, task["job_id"])
                    self._call(self.actors[name].forget, task["job_id"])

    # --- one round ----------------------------------------------------------------------------

    def step(self) -> bool:
        """One round; True when something happened (the caller then goes again at once)."""
        busy = self._poll_in_flight()
        busy = self._dispatch() or busy
        if time.monotonic() - self._housekept >= HOUSEKEEPING_S:
            self._housekept = time.monotonic()
            self._housekeeping()
        return busy

    def stand_down(self) -> None:
        """No longer elected: forget the jobs in flight (the actors keep them, and the next
        dispatcher adopts them)."""
        self.in_flight.clear()

    def free_actors(self) -> list[str]:
        taken = {f.actor for f in self.in_flight.values()}
        return [n for n in self.actors if n not in taken and n not in self._down]

    # --- internals: polling -------------------------------------------------------------------

    def _poll_in_flight(self) -> bool:
        """Each busy actor has one `wait` call outstanding, which answers as soon as its job
        finishes, or with its progress after `PROGRESS_S`: finished jobs are seen at once, and
        progress reaches the row several times a second."""
        if not self.in_flight:
            return False
        flights = list(self.in_flight.values())
        for f in flights:
            if f.waiting is None:
                f.waiting = self.actors[f.actor].wait.remote(f.job_id, f.owner, PROGRESS_S)
        refs = {f.waiting: f for f in flights}
        # Short when an actor is free (a new job may come); otherwise until something happens.
        timeout = IDLE_S if self.free_actors() else 2 * PROGRESS_S
        ready, _ = self.ray.wait(list(refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
        changed = False
        for ref in ready:
            flight = refs[ref]
            flight.waiting = None
            try:
                answer = self.ray.get(ref)
            except self.ray.exceptions.RayError as err:
                self._actor_failed(flight, err)
                changed = True
                continue
            flight.answered_at = time.time()
            changed = self._handle(flight, answer) or changed
        for flight in flights:
            silent = time.time() - flight.answered_at
            if flight.waiting is None or silent < LEASE_RENEW_S:
                continue
            if silent > SILENT_S:
                self._lost(flight.job_id, flight.owner, f"actor {flight.actor} stopped answering")
                self.in_flight.pop(flight.job_id, None)
            elif time.time() - flight.renewed_at >= LEASE_RENEW_S:
                # An actor slow to answer (busy, or restarting): keep its job's lease meanwhile.
                queue.heartbeat(self.sessions, flight.job_id, flight.owner)
                flight.renewed_at = time.time()
        return changed

    def _handle(self, flight: InFlight, answer: dict[str, Any]) -> bool:
        state = answer["state"]
        if state == "running":
            reported = (answer["progress"], answer["stage"])
            if reported == flight.reported and time.time() - flight.renewed_at < 1.0:
                return False  # nothing new: the row is written at most once a second
            flight.reported, flight.renewed_at = reported, time.time()
            beat = queue.heartbeat(
                self.sessions,
                flight.job_id,
                flight.owner,
                progress=answer["progress"],
                stage=answer["stage"],
            )
            if not beat.keep_going and not flight.stopping:
                flight.stopping = True
                self._call(self.actors[flight.actor].cancel, flight.job_id)
            return False
        self.in_flight.pop(flight.job_id, None)
        if state == "done" and not flight.stopping:
            try:
                self._store(flight)
            except Deposed:
                raise
            except Exception as err:  # signing refused, the source deleted meanwhile …
                failure = classify(err)
                if failure is not None:
                    log.error("storing %s failed: %s", flight.job_id, failure.message)
                    self.runner.fail(flight.job_id, flight.owner, failure)
        elif state == "failed" and not flight.stopping:
            failure = Failure(answer["code"], answer["message"], retry=answer["retry"])
            self.runner.fail(flight.job_id, flight.owner, failure)
        elif state == "unknown":
            self._lost(flight.job_id, flight.owner, f"actor {flight.actor} lost the job")
        else:  # stopped after a cancel, or finished after all: nobody wants it now
            queue.abandon(self.sessions, flight.job_id, flight.owner)
            self.runner.discard(flight.job_id, flight.owner)
        self._call(self.actors[flight.actor].forget, flight.job_id)
        return True

    def _actor_failed(self, flight: InFlight, err: Exception) -> None:
        """The actor's process died (or its node): the attempt is lost; the job goes back to
        the queue and, with Ray restarting the actor, is picked up again."""
        self.in_flight.pop(flight.job_id, None)
        self._down.add(flight.actor)
        self._lost(flight.job_id, flight.owner, f"actor {flight.actor} died ({type(err).__name__})")

    # --- internals: dispatching ---------------------------------------------------------------

    def _dispatch(self) -> bool:
        free = self.free_actors()
        if not free:
            return False
        with self.sessions() as session:
            nxt = session.execute(
                select(Video.id, Video.engine_model)
                .where(Video.status == VideoStatus.QUEUED, Video.deleted_at.is_(None))
                .order_by(Video.seq)
                .limit(1)
            ).first()
        if nxt is None:
            return False
        # A job whose actor died under it goes elsewhere when it can.
        elsewhere = [n for n in free if n != self._lost_on.get(nxt.id)]
        name = choose_actor(nxt.engine_model, elsewhere or free, self.loaded)
        assert name is not None
        owner = f"{name}.{secrets.token_hex(3)}"
        if not self._still_leading():
            raise Deposed("the election was lost")
        job = queue.claim(self.sessions, owner)
        if job is None:
            return False
        flight = InFlight(job.id, owner, name, answered_at=time.time())
        try:
            prepared = self.runner.prepare(job)
        except Exception as err:  # a source deleted meanwhile, an input the check blocks …
            failure = classify(err)
            assert failure is not None  # nothing was rendering: nothing to cancel
            if failure.retry:
                log.exception("preparing %s failed", job.id)
            self.runner.fail(job.id, owner, failure)
            return True
        request = prepared.request
        flight.stamp = prepared.stamp
        work = {
            "request": request,
            "shots": prepared.shots,
            "watermark": prepared.stamp.watermark,
            "crf": self.settings.crf,
            "preset": self.settings.x264_preset,
            "nsfw": nsfw_options(self.settings),
        }
        try:
            started = self.ray.get(
                self.actors[name].start.remote(job.id, owner, work), timeout=CALL_TIMEOUT_S
            )
        except Exception as err:
            # It may yet start it, late: a render nobody would collect.
            self._call(self.actors[name].cancel, job.id)
            self._down.add(name)
            self._lost(job.id, owner, f"actor {name} did not take the job ({type(err).__name__})")
            return True
        if started == "busy":  # only after a takeover the actor did not tell us about
            queue.release_worker(self.sessions, owner, "the actor was busy", count_attempt=False)
            self._down.add(name)
            return True
        self.in_flight[job.id] = flight
        self._lost_on.pop(job.id, None)
        model = request.model
        self.loaded[name] = [model, *(m for m in self.loaded.get(name, []) if m != model)]
        log.info("%s → %s (attempt %d)", job.id, name, job.attempts)
        return True

    # --- internals: results -------------------------------------------------------------------

    def _store(self, flight: InFlight) -> None:
        """Bring a finished job's files home into its attempt folder, then finish it as a
        local worker would (check, sign, store, complete)."""
        actor = self.actors[flight.actor]
        try:
            outcome = self.ray.get(
                actor.collect.remote(flight.job_id, flight.owner), timeout=CALL_TIMEOUT_S
            )
        except Exception as err:
            self._lost(flight.job_id, flight.owner, f"collecting from {flight.actor}: {err}")
            return
        if outcome is None:
            self._lost(flight.job_id, flight.owner, f"actor {flight.actor} lost the result")
            return
        with self.sessions() as session:
            job = session.get(Video, flight.job_id)
        if job is None:
            return
        # Adopted after a takeover: its signing is prepared again.
        stamp = flight.stamp if flight.stamp is not None else self.runner.stamp_for(job)
        video = self.blobs.path(flight.job_id, "video", attempt=flight.owner)
        video.parent.mkdir(parents=True, exist_ok=True)
        for variant, data in outcome["files"].items():  # the video last: its presence means whole
            media.atomic_write_bytes(variant_path(video, variant), data)
        found = outcome["moderation"]
        summary = dict(outcome["summary"], render_size=tuple(outcome["summary"]["render_size"]))
        files = RenderedFiles(
            video=video,
            thumbnail=variant_path(video, "thumbnail"),
            spritesheet=variant_path(video, "spritesheet"),
            info=media.probe(video),
            summary=RenderSummary(**summary),
            shots=tuple(
                RenderedShot(
                    s["index"],
                    variant_path(video, shot_variant(s["index"])),
                    s["start_frame"],
                    s["frames"],
                )
                for s in outcome["shots"]
            ),
            moderation=Decision(**found) if found is not None else None,
        )
        if self.runner.finish(
            job, flight.owner, files, stamp, worker=flight.actor, fence=self._fence
        ):
            log.info("%s completed by %s", flight.job_id, flight.actor)
        elif not self._still_leading():
            raise Deposed("the election was lost")

    def _lost(self, job_id: str, owner: str, reason: str) -> None:
        name = actor_of(owner)
        if name is not None:
            self._lost_on[job_id] = name
            self.loaded.pop(name, None)  # a restarted actor comes back with nothing loaded
        released = queue.release_worker(self.sessions, owner, reason)
        if released:
            log.warning("%s; back in the queue: %s", reason, ", ".join(released))
        else:
            log.info("%s (%s had already moved on)", reason, job_id)

    # --- internals: housekeeping --------------------------------------------------------------

    def _housekeeping(self) -> None:
        """Re-queue expired leases; ask each actor what it holds. The answers are read at the
        next housekeeping, never waited for: an actor that cannot be placed (no free GPU) or
        is restarting must not hold up the jobs of the others."""
        for job_id in queue.recover(self.sessions, keep=list(self.in_flight)):
            log.warning("%s: its lease ran out; back in the queue", job_id)
        asked = self._asked
        ready, _ = self.ray.wait(list(asked), num_returns=len(asked), timeout=0)
        for ref in ready:
            name = asked.pop(ref)
            try:
                info = self.ray.get(ref)
            except self.ray.exceptions.RayError:
                self._down.add(name)
                continue
            self._down.discard(name)
            self.loaded[name] = info["loaded_models"]
        self._down.update(asked.values())  # not answered within HOUSEKEEPING_S
        pending = set(asked.values())
        for name, actor in self.actors.items():
            if name not in pending:
                asked[actor.info.remote()] = name

    def _infos(self, timeout: float) -> dict[str, dict[str, Any]]:
        """What each actor that answers within `timeout` reports (`RenderActor.info`); the
        others (starting, or unplaced) are asked again at housekeeping."""
        refs = {actor.info.remote(): name for name, actor in self.actors.items()}
        ready, pending = self.ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        for ref in pending:  # their answers are read at the next housekeeping
            self._asked[ref] = refs[ref]
        infos = {}
        for ref in ready:
            with contextlib.suppress(self.ray.exceptions.RayError):
                infos[refs[ref]] = self.ray.get(ref)
        return infos

    def _call(self, method: Any, *args: Any) -> None:
        """Fire and forget: a call the actor may miss costs nothing (it is idempotent)."""
        try:
            method.remote(*args)
        except Exception:
            log.warning("calling %s failed", method, exc_info=True)


def actor_options(settings: Settings) -> dict[str, Any]:
    return {
        "gpus": settings.ray_gpus_per_actor,
        "cpus": settings.ray_cpus_per_actor,
        "memory": settings.memory,
        "attention_backend": settings.attention_backend,
        "compile": settings.compile,
        "vae_tiling": settings.vae_tiling,
        "max_loaded_models": settings.max_loaded_models,
    }


def nsfw_options(settings: Settings) -> dict[str, Any] | None:
    """What an actor needs to run the output nudity check, sent with each job (actors outlive
    the settings of the replica that started them)."""
    if not settings.nsfw_check:
        return None
    return {"threshold": settings.nsfw_threshold, "samples": settings.nsfw_sample_frames}
