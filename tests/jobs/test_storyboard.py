"""A storyboard as a job: one row, one render, the whole video and every shot kept."""

import io

import pytest
from PIL import Image

from moviola import media
from moviola.errors import InvalidRequestError, TooLargeError
from moviola.jobs.service import Caller, Shot, Upload

pytestmark = pytest.mark.timeout(120)

ME = Caller()


def png(color=(30, 200, 90)) -> Upload:
    out = io.BytesIO()
    Image.new("RGB", (160, 96), color).save(out, format="PNG")
    return Upload(out.getvalue(), "start.png")


def test_a_storyboard_renders_as_one_job_with_every_shot_kept(store, worker):
    _, _, blobs, service = store
    shots = [
        Shot("a lantern is lit", "1"),
        Shot("the wind blows it out", "0.5"),
        Shot("morning in the same room", "0.5", image=png()),
    ]
    video = service.storyboard(ME, shots=shots, model="tiny", size="160x96", extras={"seed": 3})
    assert video.kind == "storyboard" and video.status == "queued"
    assert video.params["shots"][2] == {
        "prompt": "morning in the same room",
        "seconds": 0.5,
        "image": True,
    }
    assert video.seconds == "2" and "wind" in video.prompt

    assert worker.run_one()
    done = service.get(ME, video.id)
    assert done.status == "completed", done.error_message
    assert {"video", "thumbnail", "spritesheet", "shot_1", "shot_2", "shot_3"} <= set(done.files)

    whole = media.probe(blobs.root / done.files["video"]["path"])
    counts = [media.probe(done.files[f"shot_{i}"]["path"]).frames for i in (1, 2, 3)]
    assert sum(counts) == whole.frames
    assert [s["frames"] for s in done.result["shots"]] == counts
    assert [s["start_frame"] for s in done.result["shots"]] == [0, counts[0], sum(counts[:2])]
    path, media_type = service.content(ME, video.id, "shot_2")
    assert media_type == "video/mp4" and path.name.endswith(".shot2.mp4")


def test_a_bad_storyboard_is_refused_and_leaves_nothing(store):
    settings, _, blobs, service = store
    with pytest.raises(InvalidRequestError) as caught:
        service.storyboard(ME, shots=[Shot("fine"), Shot("")], model="tiny", size="160x96")
    assert caught.value.param == "shots[1].prompt"
    with pytest.raises(InvalidRequestError) as caught:
        service.storyboard(ME, shots=[Shot("x", "1", Upload(b"not an image"))], model="tiny")
    assert caught.value.param == "shots[0].image"
    settings.max_upload_bytes = 10
    with pytest.raises(TooLargeError):
        service.storyboard(ME, shots=[Shot("x", "1", png())], model="tiny", size="160x96")
    assert service.list(ME)[0] == []
    assert not blobs.root.exists() or not any(blobs.root.iterdir())


def test_only_a_storyboard_has_shots_to_download(store, worker):
    _, _, _, service = store
    plain = service.create(ME, prompt="a heron", model="tiny", seconds="1", size="160x96")
    assert worker.run_one()
    with pytest.raises(Exception) as caught:
        service.content(ME, plain.id, "shot_1")
    assert caught.value.param == "variant"
    with pytest.raises(InvalidRequestError):
        service.content(ME, plain.id, "shot_x")
