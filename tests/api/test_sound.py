"""Sound through the Videos API, with the real `openai` SDK: the files it downloads are decoded
with PyAV and their streams checked."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import openai
import pytest
from openai import omit

from moviola import audio, media
from moviola.audio import RATE, Audio

MOVIOLA = str(Path(sys.executable).parent / "moviola")
NOISE_FLOOR = 1e-3
pytestmark = pytest.mark.timeout(300)


def streams(mp4: bytes) -> tuple[list, list]:
    with av.open(io.BytesIO(mp4)) as container:
        video = [
            (s.codec_context.name, s.start_time, float(s.duration * s.time_base))
            for s in container.streams.video
        ]
        sound = [
            (
                s.codec_context.name,
                s.codec_context.profile,
                s.rate,
                s.channels,
                s.start_time,
                float(s.duration * s.time_base),
            )
            for s in container.streams.audio
        ]
    return video, sound


def sound_of(mp4: bytes) -> Audio | None:
    return media.decode_audio(io.BytesIO(mp4))


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def tone_clip(path: Path, seconds: float = 2.0, fps: int = 16) -> Path:
    """An MP4 with a picture and a stereo tone: what a creator brings from elsewhere."""
    frames = np.random.default_rng(9).integers(0, 255, (int(seconds * fps), 96, 160, 3), np.uint8)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = (0.4 * np.sin(2 * np.pi * 523 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))).astype(
        np.float32
    )
    media.write_mp4(frames, path, fps=fps, audio=Audio(np.stack([wave, wave]), RATE))
    return path


def correlation(a: np.ndarray, b: np.ndarray, lag: int = 0) -> float:
    if lag > 0:
        a, b = a[lag:], b[: len(b) - lag]
    elif lag < 0:
        a, b = a[:lag], b[-lag:]
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


@pytest.fixture(scope="module")
def with_sound(client):
    """A video made by a model that makes its own sound."""
    video = client.videos.create_and_poll(
        model="tiny-ltx2", prompt="rain on a tin roof", size="160x96", seconds="2"
    )
    assert video.status == "completed", video.error
    return video


def test_a_model_with_sound_makes_an_mp4_with_one_aac_stream(client, with_sound):
    mp4 = client.videos.download_content(with_sound.id).read()
    ((codec, v_start, v_duration),) = streams(mp4)[0]
    ((a_codec, profile, rate, channels, a_start, a_duration),) = streams(mp4)[1]
    assert (codec, a_codec, profile, rate, channels) == ("h264", "aac", "LC", 48_000, 2)
    assert v_start == 0 and a_start == 0
    assert abs(a_duration - v_duration) < 1 / 24
    assert audio.rms(sound_of(mp4)) > NOISE_FLOOR
    assert with_sound.model_extra["moviola"]["audio"] == {
        "codec": "aac",
        "sample_rate": 48_000,
        "channels": 2,
        "kind": "model",
    }


def test_a_silent_model_makes_a_silent_video_and_a_soundtrack_gives_it_sound(client):
    silent = client.videos.create_and_poll(prompt="a paper boat", size="160x96", seconds="1")
    assert silent.model_extra["moviola"]["audio"] is None
    assert streams(client.videos.download_content(silent.id).read())[1] == []
    scored = client.videos.create_and_poll(
        prompt="a paper boat", size="160x96", seconds="1", extra_body={"audio": "soundtrack"}
    )
    assert scored.status == "completed", scored.error
    assert scored.model_extra["moviola"]["audio"]["kind"] == "soundtrack"
    assert audio.rms(sound_of(client.videos.download_content(scored.id).read())) > NOISE_FLOOR


def test_an_unknown_sound_option_is_a_400_naming_it_and_queues_nothing(client):
    before = len(client.videos.list(limit=100).data)
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(prompt="x", size="160x96", seconds="1", extra_body={"audio": "loud"})
    assert caught.value.body["param"] == "audio"
    with pytest.raises(openai.BadRequestError) as caught:  # "add" is an edit's, not a create's
        client.videos.create(prompt="x", size="160x96", seconds="1", extra_body={"audio": "add"})
    assert caught.value.body["param"] == "audio"
    assert len(client.videos.list(limit=100).data) == before


def test_an_extension_keeps_the_sources_sound_for_the_source_part(client, with_sound):
    source = client.videos.download_content(with_sound.id).read()
    longer = client.videos.extend(
        prompt="the rain gets heavier",
        seconds="4",
        video=omit,
        extra_body={"video": {"id": with_sound.id}},
    )
    longer = client.videos.poll(longer.id)
    assert longer.status == "completed", longer.error
    assert longer.seconds == "6"
    mp4 = client.videos.download_content(longer.id).read()
    whole, original = sound_of(mp4), sound_of(source)
    assert whole.length == audio.boundary(6 * 24, 24)
    part = whole.samples[0, : original.length - round(audio.CROSSFADE_S * RATE)]
    reference = original.samples[0, : len(part)]
    lags = range(-200, 201, 5)
    assert max(lags, key=lambda lag: correlation(part, reference, lag)) == 0
    assert correlation(part, reference) > 0.9  # through a second AAC encode
    new_part = audio.span(whole, 48, 6 * 24, 24)
    assert audio.rms(new_part) > NOISE_FLOOR


def test_add_sound_keeps_the_picture_and_makes_its_sound(client):
    silent = client.videos.create_and_poll(prompt="waves", size="160x96", seconds="1")
    dubbed = client.videos.edit(
        prompt="waves breaking, gulls",
        video=omit,
        extra_body={"video": {"id": silent.id}, "model": "tiny-ltx2", "audio": "add"},
    )
    dubbed = client.videos.poll(dubbed.id)
    assert dubbed.status == "completed", dubbed.error
    assert dubbed.model_extra["moviola"]["audio"]["kind"] == "model"
    before = media.probe(io.BytesIO(client.videos.download_content(silent.id).read()))
    after_mp4 = client.videos.download_content(dubbed.id).read()
    after = media.probe(io.BytesIO(after_mp4))
    assert (after.frames, after.size) == (before.frames, before.size)
    assert audio.rms(sound_of(after_mp4)) > NOISE_FLOOR


def test_a_damaged_audio_stream_in_an_upload_is_a_400_and_nothing_is_stored(
    client, server, tmp_path
):
    clip = tone_clip(tmp_path / "clip.mp4")
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(1)
    with av.open(str(clip)) as container:
        for packet in container.demux(container.streams.audio[0]):
            if packet.size and packet.pos is not None:
                data[packet.pos : packet.pos + packet.size] = rng.integers(
                    0, 256, packet.size, dtype=np.uint8
                ).tobytes()
    before = len(client.videos.list(limit=100).data)
    blobs = server.data_dir / "blobs"
    stored = set(blobs.iterdir())
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.edit(prompt="brighter", video=("clip.mp4", bytes(data), "video/mp4"))
    assert caught.value.body["param"] == "video"
    assert "damaged audio" in caught.value.body["message"]
    assert len(client.videos.list(limit=100).data) == before
    assert set(blobs.iterdir()) == stored


def moviola(*args, env):
    return subprocess.run(
        [MOVIOLA, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        timeout=300,
        check=False,
    )


def test_imported_sound_survives_a_remix_by_a_silent_model_and_none_strips_it(
    make_server, tmp_path
):
    folder = tmp_path / "downloads"
    folder.mkdir()
    clip = tone_clip(folder / "beach.mp4")
    server = make_server(tmp_path / "lib")
    done = moviola("import", folder, env={"MOVIOLA_DATA_DIR": str(server.data_dir)})
    assert done.returncode == 0, done.stderr
    server.start()
    client = server.client()
    (imported,) = client.videos.list().data
    assert imported.model_extra["moviola"]["audio"]["kind"] == "source"

    remix = client.videos.remix(imported.id, prompt="at sunset")  # the default model: silent
    remix = client.videos.poll(remix.id)
    assert remix.status == "completed", remix.error
    assert remix.model_extra["moviola"]["audio"]["kind"] == "source"
    kept = sound_of(client.videos.download_content(remix.id).read())
    original = media.decode_audio(clip)
    assert correlation(kept.samples[0], original.samples[0]) > 0.9

    silent = client.videos.remix(imported.id, prompt="at sunset", extra_body={"audio": "none"})
    silent = client.videos.poll(silent.id)
    assert silent.model_extra["moviola"]["audio"] is None
    assert streams(client.videos.download_content(silent.id).read())[1] == []


def test_import_export_import_keeps_the_audio_bytes(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    clip = tone_clip(folder / "song.mp4")
    first, second = tmp_path / "first", tmp_path / "second"
    assert moviola("import", folder, env={"MOVIOLA_DATA_DIR": str(first)}).returncode == 0
    archive = tmp_path / "library.zip"
    assert moviola("export", archive, env={"MOVIOLA_DATA_DIR": str(first)}).returncode == 0
    again = moviola("import", archive, env={"MOVIOLA_DATA_DIR": str(second)})
    assert again.returncode == 0, again.stderr
    (kept,) = (second / "blobs").rglob("*.mp4")
    assert audio_packets(kept) == audio_packets(clip)


def test_a_signed_video_with_sound_verifies(client, with_sound, tmp_path):
    path = tmp_path / "rain.mp4"
    path.write_bytes(client.videos.download_content(with_sound.id).read())
    checked = moviola("verify", path, env={})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    damaged = bytearray(path.read_bytes())
    with av.open(str(path)) as container:
        offset, size = next(
            (p.pos, p.size) for p in container.demux(audio=0) if p.size and p.pos is not None
        )
    damaged[offset : offset + size] = bytes(size)
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(damaged))
    assert moviola("verify", tampered, env={}).returncode != 0
