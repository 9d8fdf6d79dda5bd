"""A creator's presets: stored per owner, kind and name; merged over the built-in ones, which
a stored row of the same name replaces and a hidden one removes; checked before they are kept."""

import pytest

from moviola.errors import InvalidRequestError
from moviola.store import db
from moviola.store import presets as stored
from moviola.studio import presets


@pytest.fixture
def sessions(tmp_path):
    engine = db.connect(f"sqlite:///{tmp_path / 'moviola.db'}")
    db.migrate(engine)
    return db.sessions(engine)


def names(sessions, owner, kind):
    return [p.name for p in presets.shown(sessions, owner) if p.kind == kind]


def test_a_saved_preset_is_its_owners_alone_and_saving_again_replaces_it(sessions):
    stored.save(sessions, "key_a", "style", "Pastel", "soft pastel colours", {"steps": 20})
    stored.save(sessions, "key_a", "style", "Pastel", "pale pastel colours", {})
    rows = stored.of_owner(sessions, "key_a")
    assert [(r.name, r.prompt_addition, r.params) for r in rows] == [
        ("Pastel", "pale pastel colours", {})
    ]
    assert stored.of_owner(sessions, "key_b") == []
    assert stored.of_owner(sessions, None) == []
    assert "Pastel" in names(sessions, "key_a", "style")
    assert "Pastel" not in names(sessions, "key_b", "style")


def test_a_row_shadows_a_builtin_and_a_hidden_one_removes_it(sessions):
    builtin = [p.name for p in presets.BUILTIN if p.kind == "camera"]
    assert names(sessions, None, "camera") == builtin
    presets.save(sessions, None, kind="camera", name="Orbit", addition="a slow orbit", params={})
    orbit = next(p for p in presets.shown(sessions, None) if p.name == "Orbit")
    assert (orbit.addition, orbit.builtin, orbit.edited) == ("a slow orbit", True, True)

    presets.remove(sessions, None, kind="camera", name="Drone")
    assert "Drone" not in names(sessions, None, "camera")
    assert "Drone" in names(sessions, "key_a", "camera")  # for no one else
    # Saving it again brings it back.
    presets.save(sessions, None, kind="camera", name="Drone", addition="high above", params={})
    assert "Drone" in names(sessions, None, "camera")


def test_a_rename_replaces_the_old_name_and_removing_ones_own_deletes_it(sessions):
    presets.save(sessions, "k", kind="style", name="Warm", addition="warm light", params={})
    presets.save(
        sessions,
        "k",
        kind="style",
        name="Warmer",
        addition="warm light",
        params={},
        replaces="Warm",
    )
    assert "Warm" not in names(sessions, "k", "style") and "Warmer" in names(sessions, "k", "style")
    presets.remove(sessions, "k", kind="style", name="Warmer")
    assert [r.name for r in stored.of_owner(sessions, "k")] == []
    with pytest.raises(InvalidRequestError, match="no style preset named 'Warmer'"):
        presets.remove(sessions, "k", kind="style", name="Warmer")


@pytest.mark.parametrize(
    ("kind", "name", "addition", "params", "param", "message"),
    [
        ("style", "  ", "x", {}, "name", "give the preset a name"),
        ("style", "n" * 41, "x", {}, "name", "at most 40"),
        ("style", "Long", "x" * 301, {}, "addition", "at most 300"),
        ("style", "Empty", "", {}, "addition", "give it an addition"),
        ("lens", "Wide", "x", {}, "kind", "kind must be one of style, camera"),
        ("style", "S", "x", {"steps": "0"}, "steps", "1 to 500"),
        ("style", "S", "x", {"steps": "2.5"}, "steps", "whole number"),
        ("style", "S", "x", {"guidance": "nan"}, "guidance", "0 to 50"),
        ("style", "S", "x", {"speed": "warp"}, "speed", "quality, balanced, fast"),
        ("style", "S", "x", {"seed": "5"}, "seed", "cannot set seed"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_kept(
    sessions, kind, name, addition, params, param, message
):
    with pytest.raises(InvalidRequestError, match=message) as refused:
        presets.save(sessions, "k", kind=kind, name=name, addition=addition, params=params)
    assert refused.value.param == param
    assert stored.of_owner(sessions, "k") == []


def test_settings_are_kept_typed_and_empty_ones_left_unset(sessions):
    made = presets.save(
        sessions,
        "k",
        kind="style",
        name="Crisp",
        addition="crisp detail",
        params={"steps": "30", "guidance": "4.5", "speed": "balanced", "negative_prompt": ""},
    )
    assert made.params == {"steps": 30, "guidance": 4.5, "speed": "balanced"}
    assert stored.of_owner(sessions, "k")[0].params == made.params
