"""The `speed` option through the Videos API, with the real `openai` SDK."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.timeout(300)


def ids(client) -> set[str]:
    return {video.id for video in client.videos.list(limit=100)}


def test_fast_is_stored_rendered_at_its_distilled_steps_and_shown(client, http):
    video = client.videos.create_and_poll(
        prompt="a paper boat", size="160x96", seconds="1", extra_body={"speed": "fast"}
    )
    assert video.status == "completed", video.error
    render = video.moviola["render"]
    assert (render["steps"], render["guidance"]) == (3, 1.0)  # the tiny route's, CFG off
    page = http.get(f"/videos/{video.id}").text  # the Studio lists the request's settings
    assert "speed" in page and "fast" in page


def test_balanced_renders(client):
    video = client.videos.create_and_poll(
        prompt="a paper boat",
        size="160x96",
        seconds="1",
        extra_body={"speed": "balanced", "num_inference_steps": 12},
    )
    assert video.status == "completed", video.error
    assert video.moviola["render"]["steps"] == 12


@pytest.mark.parametrize(
    ("model", "speed", "says"),
    [
        ("sora-2", "turbo", "balanced"),  # the message lists the choices
        ("sora-2-pro", "fast", "no step-distilled LoRA"),  # tiny-ltx has no distilled route
    ],
)
def test_a_speed_the_model_cannot_run_is_a_400_naming_speed_and_queues_nothing(
    client, model, speed, says
):
    before = ids(client)
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(
            prompt="x", model=model, size="160x96", seconds="1", extra_body={"speed": speed}
        )
    assert caught.value.body["param"] == "speed"
    assert says in caught.value.body["message"]
    assert ids(client) == before


def test_a_missing_lora_is_refused_at_submit_with_the_pull_command(strict):
    # The model is installed (its folder exists), its step-distilled LoRA is not.
    folder = strict.data_dir / "models" / "wan2.1-t2v-1.3b"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    client = strict.client(strict.create_key("speed"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(
            prompt="x", model="wan2.1-t2v-1.3b", seconds="4", extra_body={"speed": "fast"}
        )
    assert caught.value.body["param"] == "speed"
    assert "moviola models pull wan2.1-t2v-1.3b --fast" in caught.value.body["message"]
