"""Time left, from measured history and the job's own pace; the live state it goes by."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from moviola.jobs import eta, live
from moviola.jobs.service import Caller
from moviola.store.models import Video

pytestmark = pytest.mark.timeout(240)

ME = Caller()


def shape(steps: int = 10, pixels: int = 160 * 96, frames: int = 17, kind: str = "create"):
    return eta.Shape("tiny", kind, pixels, frames, steps)


def run(steps: int = 10, frames: int = 17, **stages: float) -> eta.Run:
    return eta.Run(shape(steps, frames=frames), stages)


def test_runs_of_the_same_shape_give_each_stage_its_median():
    history = eta.History(
        [
            run(loading=9.0, denoising=2.0, decoding=0.5, other=0.2),  # a cold start
            run(loading=0.0, denoising=2.2, decoding=0.6, other=0.2),
            run(loading=0.0, denoising=1.8, decoding=0.4, other=0.2),
            run(steps=40, loading=0.0, denoising=8.0, decoding=0.5, other=0.2),  # not this shape
        ]
    )
    assert history.expected(shape()) == pytest.approx(
        {"loading": 0.0, "denoising": 2.0, "decoding": 0.5, "other": 0.2}
    )


def test_other_shapes_are_scaled_by_their_work():
    history = eta.History([run(steps=10, frames=17, loading=1.0, denoising=2.0, decoding=0.5)])
    expected = history.expected(shape(steps=30, frames=34))
    # Denoising grows with steps × frames, decoding with frames; loading does not.
    assert expected == pytest.approx({"loading": 1.0, "denoising": 12.0, "decoding": 1.0})
    assert eta.History([]).expected(shape()) is None  # no run of the model: no guess


def job(status: str, **fields) -> Video:
    values = dict(
        id="video_x",
        seq=1,
        kind="create",
        model="tiny",
        engine_model="tiny",
        seconds="1",
        size="160x96",
        params={"num_inference_steps": 10},
    )
    return Video(status=status, **{**values, **fields})


def test_a_denoising_job_goes_by_its_own_pace():
    now = 1000.0
    state = {
        "stage": "denoising",
        "step": 40,
        "steps": 50,
        "segment": 0,
        "segments": 1,
        "stage_at": now - 41.0,
        "denoise_at": now - 40.5,
        "step_at": now - 0.5,
        "pace": 1.0,  # 40 s for 40 steps
    }
    expected = {"denoising": 25.0, "decoding": 0.5, "writing": 0.3, "other": 0.2}
    left = eta.remaining(job("in_progress", live=state, started_at=now - 42), expected, now)
    # History's 0.5 s a step counts as four steps beside the forty taken at 1 s; ten steps
    # are left, half a second of the next already spent. Decoding, writing and the rest take
    # what history says, scaled as this run's steps are to history's.
    per_step = (0.5 * 4 + 1.0 * 40) / 44
    assert left == pytest.approx(per_step * 10 - 0.5 + per_step / 0.5 * (0.5 + 0.3 + 0.2))


def test_a_queued_job_waits_for_the_jobs_ahead(store):
    _, sessions, _, service = store
    jobs = [
        service.create(ME, prompt=f"clip {i}", model="tiny", seconds="1", size="160x96")
        for i in range(3)
    ]
    now = time.time()
    with sessions.begin() as session:
        history = Video(
            id="video_done",
            seq=1,
            kind="create",
            status="completed",
            model="tiny",
            engine_model="tiny",
            seconds="1",
            size="160x96",
            params={},
            started_at=1000.0,  # a 4 s run: 3.5 s of stages and 0.5 s outside them
            completed_at=1004.0,
            result={
                "render_size": [160, 96],
                "frames": 16,
                "steps": 2,
                "timings": {"loading": 0.0, "denoising": 3.0, "decoding": 0.5},
            },
        )
        session.add(history)
        running = session.get(Video, jobs[0].id)
        running.status, running.started_at = "in_progress", now - 1
        running.live = {"stage": "decoding", "segment": 0, "segments": 1, "stage_at": now}
    with sessions() as session:
        rows = [session.get(Video, j.id) for j in jobs]
        left = eta.estimates(session, rows, now)
    # The running job has its decoding and the rest left (0.5 + 0.5 s); each queued one
    # takes the whole 4 s after the one before it, on the one busy worker.
    assert left == pytest.approx({jobs[0].id: 1.0, jobs[1].id: 5.0, jobs[2].id: 9.0})


def test_the_worker_writes_live_state_and_previews_while_it_renders(store, worker):
    _, sessions, blobs, service = store
    video = service.create(
        ME,
        prompt="a heron",
        model="tiny",
        seconds="1",
        size="160x96",
        extras={"num_inference_steps": 40},
    )
    seen: list[dict] = []
    previews: list[bytes] = []
    path = live.preview_path(blobs, video.id)
    thread = threading.Thread(target=worker.run_one)
    thread.start()
    while thread.is_alive():
        with sessions() as session:
            state = session.get(Video, video.id).live
        if state and (not seen or state != seen[-1]):
            seen.append(state)
            if path.exists():
                previews.append(path.read_bytes())
        time.sleep(0.02)
    thread.join()
    stages = [s["stage"] for s in seen]
    assert "denoising" in stages and "decoding" in stages
    denoising = [s for s in seen if s["stage"] == "denoising" and s["step"]]
    assert all(s["steps"] == 40 and s["denoise_at"] <= s["step_at"] for s in denoising)
    assert max(s["preview"] for s in seen) >= 1  # the first step's latents at least
    assert previews and previews[-1][:3] == b"\xff\xd8\xff"  # a JPEG
    with sessions() as session:
        done = session.get(Video, video.id)
    assert done.status == "completed" and done.live is None
    assert not path.exists()  # the run's preview goes with it


@pytest.fixture
def one_thread():
    """torch on one thread: a spinning thread pool on a shared 2-core machine makes a render
    ten times slower whenever something else runs, which no history could foresee."""
    import torch

    kept = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(kept)


def test_estimates_are_within_30_percent_after_three_runs(store, worker, one_thread):
    """Three tiny jobs of one shape, then a fourth: at each point of its progress the
    estimate is compared with the time it really had left, within ±30% (or ±1 s, for the
    last moments).

    That is a fair test only of a run the machine let go at history's speed: one that the
    other work of a shared machine slowed down or sped up (its whole run more than a quarter
    off history's median) is set aside and another made, three times at most. With no fair
    run, the last must still be far better than a guess (median error under 50%)."""
    _, sessions, _, service = store

    def submit():
        return service.create(
            ME,
            prompt="a heron over reeds",
            model="tiny",
            seconds="2",
            size="160x96",
            extras={"num_inference_steps": 150, "seed": 1},
        )

    for _ in range(3):
        submit()
        assert worker.run_one()
    for _ in range(3):
        video = submit()
        with sessions() as session:
            row = session.get(Video, video.id)
            usual = eta.history(session, ["tiny"]).expected(eta.planned_shape(row))
        samples, finished = watch(sessions, worker, video.id)
        took = finished.completed_at - finished.started_at
        fair = abs(took - sum(usual.values())) <= 0.25 * sum(usual.values())
        print(f"\nthe run took {took:.2f} s, history says {sum(usual.values()):.2f} s")
        if fair:
            break
    misses, errors = [], []
    for at, left, stage in samples:
        really = finished.completed_at - at
        print(f"  {left:5.2f} s left, really {really:5.2f} s ({stage})")
        errors.append(abs(left - really) / max(really, 1.0))
        if abs(left - really) > max(0.3 * really, 1.0):
            misses.append((stage, left, round(really, 2)))
    assert len(samples) >= 5
    assert {"queued", "denoising", "decoding"} <= {stage for _, _, stage in samples}
    if fair:
        assert not misses, misses
    else:
        assert statistics.median(errors) < 0.5, misses


def watch(sessions, worker, video_id: str) -> tuple[list[tuple[float, float, str]], Video]:
    """Render the job on `worker` while sampling its estimate: (when, seconds left, stage)
    several times a second, and the finished row."""
    samples = []

    def sample() -> None:
        now = time.time()
        with sessions() as session:
            row = session.get(Video, video_id)
            left = eta.estimates(session, [row], now).get(video_id)
            stage = str((row.live or {}).get("stage") or row.status)
        if left is not None and row.status in ("queued", "in_progress"):
            samples.append((now, left, stage))

    sample()  # while it waits for the worker
    thread = threading.Thread(target=worker.run_one)
    thread.start()
    while thread.is_alive():
        sample()
        time.sleep(0.15)
    thread.join()
    with sessions() as session:
        finished = session.get(Video, video_id)
    assert finished.status == "completed"
    return samples, finished
