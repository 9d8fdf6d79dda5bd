"""`/v1/models`: what a client discovers before it asks for a video."""

from __future__ import annotations

import pytest
from openai import AuthenticationError, NotFoundError


def test_the_list_has_the_aliases_and_the_models_this_server_can_run(client):
    models = client.models.list()
    ids = [model.id for model in models]
    # The aliases as Sora clients name them, then the catalogue ids with weights here (the
    # built-in test models); models whose weights are not here are left out.
    assert ids[:2] == ["sora-2", "sora-2-pro"]
    assert {"tiny", "tiny-ltx"} <= set(ids)
    assert "wan2.1-t2v-1.3b" not in ids
    for model in models:
        assert model.object == "model" and isinstance(model.created, int) and model.owned_by


def test_retrieve_a_model(client):
    model = client.models.retrieve("sora-2")
    assert (model.id, model.object, model.owned_by) == ("sora-2", "model", "moviola")
    assert client.models.retrieve("tiny").id == "tiny"


@pytest.mark.parametrize("name", ["sora-9", "wan2.1-t2v-1.3b"])
def test_a_model_this_server_does_not_serve_is_404(client, name):
    with pytest.raises(NotFoundError) as caught:
        client.models.retrieve(name)
    assert caught.value.body["param"] == "model" and caught.value.body["code"] == "not_found"


def test_models_need_a_key_like_the_rest_of_the_api(strict):
    with pytest.raises(AuthenticationError):
        strict.client("sk-wrong").models.list()
    assert "sora-2" in [m.id for m in strict.client(strict.create_key()).models.list()]
