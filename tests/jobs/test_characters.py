"""Characters in the jobs layer: made from a clip (reference frames picked, cropped to a face),
checked against the prompt, and rendered into videos and storyboards from their frames."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from moviola import media
from moviola.errors import InvalidRequestError, MediaError, NotFoundError
from moviola.jobs.characters import REFERENCE_FRAMES, Characters
from moviola.jobs.service import Caller, Shot, Upload
from moviola.store.models import Character

pytestmark = pytest.mark.timeout(300)

ME = Caller()


def portrait(cx: int, cy: int = 150, size: tuple[int, int] = (480, 320)) -> np.ndarray:
    """A drawn head and shoulders at (cx, cy) on a plain wall: NudeNet reports it as a face."""
    r = 60
    image = Image.new("RGB", size, (90, 120, 160))
    draw = ImageDraw.Draw(image)
    skin = (224, 172, 140)
    draw.ellipse([cx - 2.2 * r, cy + 1.1 * r, cx + 2.2 * r, cy + 4 * r], fill=(40, 60, 120))
    draw.rectangle([cx - 0.35 * r, cy + 0.8 * r, cx + 0.35 * r, cy + 1.4 * r], fill=skin)
    draw.ellipse([cx - 1.05 * r, cy - 1.35 * r, cx + 1.05 * r, cy + 0.2 * r], fill=(60, 40, 20))
    draw.ellipse([cx - 0.8 * r, cy - r, cx + 0.8 * r, cy + r], fill=skin)
    for side in (-1, 1):
        x, y = cx + side * 0.35 * r, cy - 0.2 * r
        draw.ellipse([x - 8, y - 5, x + 8, y + 5], fill=(255, 255, 255))
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(40, 30, 20))
        draw.line([cx + side * 12, cy - 23, cx + side * 30, cy - 24], fill=(50, 30, 20), width=3)
    draw.polygon([(cx, cy - 6), (cx - 6, cy + 15), (cx + 6, cy + 15)], fill=(200, 140, 110))
    draw.arc([cx - 18, cy + 18, cx + 18, cy + 36], 20, 160, fill=(150, 50, 50), width=4)
    return np.asarray(image.filter(ImageFilter.GaussianBlur(1.5)))


def clip(frames: np.ndarray, fps: int = 8) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        media.write_mp4(frames, path, fps=fps, preset="ultrafast")
        return path.read_bytes()


def face_clip() -> bytes:
    """Two seconds of a face moving across the frame; its first frames are nearly black."""
    frames = np.stack([portrait(160 + 10 * i) for i in range(16)])
    frames[:3] //= 12
    return clip(frames)


def plain_clip() -> bytes:
    ys, xs = np.mgrid[0:96, 0:160]
    frames = np.stack([((xs + ys * 2 + 9 * i) % 200).astype(np.uint8) for i in range(8)])
    return clip(np.repeat(frames[..., None], 3, axis=-1))


@pytest.fixture
def characters(store) -> Characters:
    return store[3].characters


def test_a_character_keeps_its_sharpest_frames_cropped_to_its_face(store, characters):
    made = characters.create(ME.owner, " Ada ", face_clip(), "ada.mp4")
    assert made.id.startswith("char_") and made.name == "Ada"
    frames = made.reference_frames
    assert len(frames) == REFERENCE_FRAMES
    # One from each third of the clip (frames 0–4, 5–10, 11–15), never a dark one (0–2).
    spans = [range(3, 5), range(5, 11), range(11, 16)]
    assert all(f["frame"] in span for f, span in zip(frames, spans, strict=True))
    for frame in frames:
        assert frame["face"]
        picture = media.load_image(frame["path"])
        assert picture.size == (frame["width"], frame["height"])
        assert picture.size[0] < 480  # the head and shoulders, not the whole frame
        assert frame["sha256"] == media.sha256_file(frame["path"])
    with store[1]() as session:
        stored = session.get(Character, made.id)
    assert stored.reference_frames == frames
    assert (store[2].folder(made.id) / "character.mp4").is_file()


def test_a_clip_with_no_face_keeps_whole_frames(characters):
    made = characters.create(ME.owner, "Mist", plain_clip(), "mist.webm")
    assert [(f["width"], f["height"], f["face"]) for f in made.reference_frames] == [
        (160, 96, False)
    ] * REFERENCE_FRAMES


def test_a_corrupt_or_frameless_clip_is_refused_and_stores_nothing(store, characters):
    _, sessions, blobs, _ = store
    whole = plain_clip()
    frameless = whole[: whole.find(b"mdat") + 4]
    for data in (b"not a video", frameless, face_clip()[:400]):
        with pytest.raises(MediaError) as err:
            characters.create(ME.owner, "Ada", data, "ada.mp4")
        assert err.value.param == "video"
    with pytest.raises(InvalidRequestError) as err:
        characters.create(ME.owner, "  ", whole, "x.mp4")
    assert err.value.param == "name"
    with sessions() as session:
        assert session.query(Character).count() == 0
    assert not blobs.root.exists() or not any(blobs.root.iterdir())


def test_a_video_names_up_to_two_of_its_callers_characters_in_its_prompt(characters):
    ada = characters.create(ME.owner, "Ada", plain_clip(), "a.mp4")
    bo = characters.create(ME.owner, "Bo", plain_clip(), "b.mp4")
    theirs = characters.create("key_other", "Cy", plain_clip(), "c.mp4")
    found = characters.for_prompt(ME.owner, [ada.id, bo.id], "ada meets Bo")  # case aside
    assert [row.id for row in found] == [ada.id, bo.id]
    refusals = [
        ([ada.id], "a quiet street"),  # not named
        ([ada.id, bo.id, ada.id], "Ada, Bo and Ada"),  # a third
        ([ada.id, ada.id], "Ada and Ada"),  # twice
    ]
    for ids, prompt in refusals:
        with pytest.raises(InvalidRequestError) as err:
            characters.for_prompt(ME.owner, ids, prompt)
        assert err.value.param == "characters"
    with pytest.raises(NotFoundError) as err:  # another key's is as absent as none
        characters.for_prompt(ME.owner, [theirs.id], "Cy waves")
    assert err.value.param == "characters"


def test_a_video_with_a_character_is_rendered_from_its_frames(store, worker):
    _, _, _, service = store
    ada = service.characters.create(ME.owner, "Ada", face_clip(), "ada.mp4")
    small = {"model": "tiny", "seconds": "0.5", "size": "160x96", "extras": {"seed": 4}}
    with_ada = service.create(ME, prompt="Ada waves", characters=[ada.id], **small)
    without = service.create(ME, prompt="Ada waves", **small)
    assert with_ada.params["characters"] == [ada.id] and "characters" not in without.params
    assert worker.run_one() and worker.run_one()
    made = [
        media.decode_frames(service.content(ME, v.id, "video")[0])[0] for v in (with_ada, without)
    ]
    assert made[0].shape == made[1].shape
    assert not np.array_equal(made[0], made[1])


def test_reference_images_are_kept_with_the_job_and_checked_first(store, worker):
    _, _, blobs, service = store

    def png(color) -> Upload:
        out = io.BytesIO()
        Image.new("RGB", (64, 64), color).save(out, format="PNG")
        return Upload(out.getvalue(), "ref.png")

    small = {"model": "tiny", "seconds": "0.5", "size": "160x96", "extras": {"seed": 4}}
    with pytest.raises(InvalidRequestError) as err:
        service.create(ME, prompt="x", reference_images=[png((1, 2, 3))] * 4, **small)
    assert err.value.param == "reference_images"
    with pytest.raises(InvalidRequestError) as err:
        service.create(ME, prompt="x", reference_images=[png((1, 2, 3)), Upload(b"no")], **small)
    assert err.value.param == "reference_images[1]"
    with pytest.raises(InvalidRequestError) as err:  # no model serves references for it
        service.create(
            ME, prompt="x", model="tiny-ltx", reference_images=[png((1, 2, 3))], seconds="0.5"
        )
    assert err.value.param == "reference_images"
    assert not blobs.root.exists() or not any(blobs.root.iterdir())

    red = service.create(ME, prompt="a kite", reference_images=[png((220, 20, 20))], **small)
    blue = service.create(ME, prompt="a kite", reference_images=[png((20, 20, 220))], **small)
    assert red.params["reference_images"] == 1
    assert blobs.input_path(red.id, ".ref1.img").is_file()
    assert worker.run_one() and worker.run_one()
    made = [media.decode_frames(service.content(ME, v.id, "video")[0])[0] for v in (red, blue)]
    assert not np.array_equal(made[0], made[1])


def test_a_storyboard_conditions_each_shot_on_the_characters_it_names(store, worker):
    _, _, _, service = store
    ada = service.characters.create(ME.owner, "Ada", face_clip(), "ada.mp4")
    shots = [Shot("Ada opens the door", "0.5"), Shot("rain", "0.5"), Shot("Ada looks up", "0.5")]
    board = service.storyboard(
        ME, shots=shots, model="tiny", size="160x96", extras={"seed": 8}, characters=[ada.id]
    )
    assert board.params["characters"] == [ada.id]
    assert [shot.get("characters") for shot in board.params["shots"]] == [[ada.id], None, [ada.id]]
    with pytest.raises(InvalidRequestError) as err:  # listed, but named by no shot
        service.storyboard(ME, shots=[Shot("rain", "0.5")], model="tiny", characters=[ada.id])
    assert err.value.param == "characters"
    with pytest.raises(InvalidRequestError) as err:  # no model serves characters for it
        service.storyboard(ME, shots=shots, model="tiny-ltx", characters=[ada.id])
    assert err.value.param == "characters"

    assert worker.run_one()
    done = service.get(ME, board.id)
    assert done.status == "completed", done.error_message
    assert [s["frames"] for s in done.result["shots"]] == [8, 8, 8]


def test_a_variation_keeps_the_characters_and_reference_images(store, worker):
    _, _, blobs, service = store
    ada = service.characters.create(ME.owner, "Ada", plain_clip(), "ada.mp4")
    swatch = io.BytesIO()
    Image.new("RGB", (64, 64), (220, 20, 20)).save(swatch, format="PNG")
    original = service.create(
        ME,
        prompt="Ada flies a kite",
        model="tiny",
        seconds="0.5",
        size="160x96",
        characters=[ada.id],
        reference_images=[Upload(swatch.getvalue(), "red.png")],
    )
    assert worker.run_one()
    varied = service.vary(ME, original.id, n=2)
    assert varied.params["characters"] == [ada.id] and varied.params["reference_images"] == 1
    assert blobs.input_path(varied.id, ".ref1.img").read_bytes() == swatch.getvalue()
