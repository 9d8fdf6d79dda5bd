"""A request no GPU of the server can hold is refused at submit, before anything is queued."""

from __future__ import annotations

import shutil
from pathlib import Path

import openai
import pytest

PUBLISHED = Path(__file__).parents[1] / "engine" / "published"


@pytest.fixture(scope="module")
def small_gpu_server(tmp_path_factory, server_class):
    """A server told its GPUs have 8 GB, with Wan 2.1 T2V 14B's folder (configs only: a
    refused request never needs the weights)."""
    data = tmp_path_factory.mktemp("memory") / "data"
    shutil.copytree(PUBLISHED / "wan2.1-t2v-14b", data / "models" / "wan2.1-t2v-14b")
    server = server_class(data, {"MOVIOLA_GPU_MEMORY_GB": "6"}).start()
    yield server
    server.stop()


def test_a_request_no_gpu_can_hold_is_a_400_naming_what_it_needs(small_gpu_server):
    client = small_gpu_server.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(model="wan2.1-t2v-14b", prompt="a harbour", size="1280x720")
    error = caught.value.body
    assert error["code"] == "insufficient_memory"
    assert error["param"] == "size"  # at 480p it would fit
    assert "needs ≈" in error["message"] and "the largest device has 6.0 GB" in error["message"]
    assert client.videos.list().data == []  # nothing queued, nothing stored
    assert not list((small_gpu_server.data_dir / "blobs").glob("**/*.*"))


def test_the_same_server_takes_what_fits(small_gpu_server):
    client = small_gpu_server.client()
    video = client.videos.create(prompt="a boat", size="160x96", seconds="1")  # the tiny model
    assert client.videos.poll(video.id).status == "completed"


def test_a_finished_video_says_where_it_ran_and_what_each_stage_took(small_gpu_server):
    client = small_gpu_server.client()
    video = client.videos.create_and_poll(prompt="a kite", size="160x96", seconds="1")
    details = video.model_extra["moviola"]
    assert details["memory"]["placement"] == "resident"  # a CPU keeps everything where it is
    assert details["memory"]["estimated_peak_bytes"] > 0
    assert {"denoising", "decoding"} <= set(details["timings"])
    assert all(details["peak_memory"][stage] > 0 for stage in ("denoising", "decoding"))
