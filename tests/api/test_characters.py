"""Characters and reference images through the Videos API, driven by the official SDK: made from
a clip, shown with their reference frames, and reaching the pixels of the videos that name them."""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import BadRequestError, NotFoundError
from PIL import Image, ImageDraw, ImageFilter

from moviola import media

pytestmark = pytest.mark.timeout(300)
SMALL = {"size": "160x96", "seconds": "1"}


def portrait(cx: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A drawn head and shoulders on a plain wall: NudeNet reports it as a face."""
    r, cy = 50, 110
    image = Image.new("RGB", size, (90, 120, 160))
    draw = ImageDraw.Draw(image)
    skin = (224, 172, 140)
    draw.ellipse([cx - 2.2 * r, cy + 1.1 * r, cx + 2.2 * r, cy + 4 * r], fill=(40, 60, 120))
    draw.rectangle([cx - 0.35 * r, cy + 0.8 * r, cx + 0.35 * r, cy + 1.4 * r], fill=skin)
    draw.ellipse([cx - 1.05 * r, cy - 1.35 * r, cx + 1.05 * r, cy + 0.2 * r], fill=(60, 40, 20))
    draw.ellipse([cx - 0.8 * r, cy - r, cx + 0.8 * r, cy + r], fill=skin)
    for side in (-1, 1):
        x, y = cx + side * 0.35 * r, cy - 0.2 * r
        draw.ellipse([x - 7, y - 4, x + 7, y + 4], fill=(255, 255, 255))
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(40, 30, 20))
        draw.line([cx + side * 10, cy - 19, cx + side * 25, cy - 20], fill=(50, 30, 20), width=3)
    draw.polygon([(cx, cy - 5), (cx - 5, cy + 12), (cx + 5, cy + 12)], fill=(200, 140, 110))
    draw.arc([cx - 15, cy + 15, cx + 15, cy + 30], 20, 160, fill=(150, 50, 50), width=3)
    return np.asarray(image.filter(ImageFilter.GaussianBlur(1.5)))


def mp4(frames: np.ndarray) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        media.write_mp4(frames, path, fps=8, preset="ultrafast")
        return path.read_bytes()


@pytest.fixture(scope="module")
def face_mp4() -> bytes:
    return mp4(np.stack([portrait(120 + 8 * i) for i in range(12)]))


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 80), color).save(out, format="PNG")
    return out.getvalue()


def frames_of(client, video_id: str) -> np.ndarray:
    done = client.videos.poll(video_id)
    assert done.status == "completed", done.error
    return media.decode_frames(io.BytesIO(client.videos.download_content(video_id).read()))[0]


def refused(call, error=BadRequestError):
    with pytest.raises(error) as caught:
        call()
    return caught.value


@pytest.fixture(scope="module")
def ada(client, face_mp4):
    return client.videos.create_character(name="Ada", video=("ada.mp4", face_mp4))


def test_a_character_shows_its_reference_frames_and_they_download(client, server, ada):
    fetched = client.videos.get_character(ada.id)
    assert (fetched.id, fetched.name) == (ada.id, "Ada")
    frames = fetched.moviola["reference_frames"]
    assert frames["count"] == 3 == len(frames["frames"])
    for index, frame in enumerate(frames["frames"]):
        assert frame["variant"] == f"reference_{index}"
        assert frame["url"] == (
            f"{server.url}/v1/videos/characters/{ada.id}/content?variant=reference_{index}"
        )
        assert frame["cropped_to_face"]  # the head and shoulders, not the whole frame
        answer = httpx.get(frame["url"], timeout=30)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        picture = Image.open(io.BytesIO(answer.content))
        assert f"{picture.width}x{picture.height}" == frame["size"]
        assert picture.width < 320
    bad = httpx.get(f"{server.url}/v1/videos/characters/{ada.id}/content?variant=reference_9")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "variant"
    missing = httpx.get(f"{server.url}/v1/videos/characters/char_{'0' * 32}/content")
    assert missing.status_code == 404


def test_the_same_seed_with_a_character_makes_other_frames_and_the_same_each_time(client, ada):
    asked = {**SMALL, "prompt": "Ada walks to the window"}
    seed = {"seed": 31}
    plain = client.videos.create(**asked, extra_body=seed)
    cast = client.videos.create(**asked, extra_body={**seed, "characters": [{"id": ada.id}]})
    again = client.videos.create(**asked, extra_body={**seed, "characters": [{"id": ada.id}]})
    made = [frames_of(client, v.id) for v in (plain, cast, again)]
    assert not np.array_equal(made[0], made[1])
    assert np.array_equal(made[1], made[2])


def test_a_character_with_a_first_frame_in_a_multipart_request(client, ada, make_png):
    # With a file the SDK posts multipart, and characters go as characters[][id].
    video = client.videos.create(
        prompt="Ada in the red room",
        input_reference=("first.png", make_png()),
        extra_body={"characters": [{"id": ada.id}], "seed": 3},
        **SMALL,
    )
    assert frames_of(client, video.id).shape == (16, 96, 160, 3)


def test_a_prompt_that_does_not_name_the_character_is_refused_and_nothing_is_queued(client, ada):
    before = client.videos.list(limit=100).data
    err = refused(
        lambda: client.videos.create(
            prompt="a quiet street", extra_body={"characters": [{"id": ada.id}]}, **SMALL
        )
    )
    assert err.param == "characters" and "Ada" in err.message
    three = [{"id": ada.id}] * 3
    err = refused(
        lambda: client.videos.create(prompt="Ada", extra_body={"characters": three}, **SMALL)
    )
    assert err.param == "characters"
    assert [v.id for v in client.videos.list(limit=100).data] == [v.id for v in before]


def test_another_keys_character_is_not_found(strict):
    clip = mp4(np.stack([portrait(140 + 4 * i) for i in range(4)]))
    owner, other = strict.client(strict.create_key("a")), strict.client(strict.create_key("b"))
    theirs = owner.videos.create_character(name="Pip", video=("pip.mp4", clip))
    refused(lambda: other.videos.get_character(theirs.id), NotFoundError)
    err = refused(
        lambda: other.videos.create(
            prompt="Pip sings", extra_body={"characters": [{"id": theirs.id}]}, **SMALL
        ),
        NotFoundError,
    )
    assert err.param == "characters"
    frame = f"{strict.url}/v1/videos/characters/{theirs.id}/content"
    assert httpx.get(frame, headers={"authorization": f"Bearer {other.api_key}"}).status_code == 404


def test_a_corrupt_or_frameless_clip_is_refused_and_nothing_is_stored(client, server):
    folders = set((server.data_dir / "blobs").iterdir())
    whole = mp4(np.stack([portrait(140)] * 4))
    for data in (b"no video here", whole[: whole.find(b"mdat") + 4]):
        err = refused(
            lambda data=data: client.videos.create_character(name="X", video=("x.mp4", data))
        )
        assert err.param == "video"
    assert set((server.data_dir / "blobs").iterdir()) == folders


def test_reference_images_as_files_and_as_data_urls_reach_the_frames(client, http):
    seed = {"seed": 12}
    red, blue = png((220, 30, 30)), png((30, 30, 220))
    as_files = http.post(
        "/v1/videos",
        data={"prompt": "a kite", **SMALL, "seed": "12"},
        files=[("reference_images[]", ("red.png", red, "image/png"))],
    )
    assert as_files.status_code == 200, as_files.text
    data_url = "data:image/png;base64," + base64.b64encode(blue).decode()
    as_json = client.videos.create(
        prompt="a kite", extra_body={**seed, "reference_images": [{"image_url": data_url}]}, **SMALL
    )
    plain = client.videos.create(prompt="a kite", extra_body=seed, **SMALL)
    made = [frames_of(client, v) for v in (as_files.json()["id"], as_json.id, plain.id)]
    assert not np.array_equal(made[0], made[1])  # red is not blue
    assert not np.array_equal(made[1], made[2])
    four = http.post(
        "/v1/videos",
        data={"prompt": "a kite", **SMALL},
        files=[("reference_images[]", (f"{i}.png", red, "image/png")) for i in range(4)],
    )
    assert four.status_code == 400 and four.json()["error"]["param"] == "reference_images"
    broken = client.videos.create
    err = refused(
        lambda: broken(
            prompt="a kite",
            extra_body={"reference_images": [data_url, "data:image/png;base64,AAAA"]},
            **SMALL,
        )
    )
    assert err.param == "reference_images[1]"
