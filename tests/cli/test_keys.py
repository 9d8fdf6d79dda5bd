"""`moviola keys` through the installed entry point, against a data dir of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moviola.store import db, keys

MOVIOLA = str(Path(sys.executable).parent / "moviola")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def moviola(data_dir):
    def run(*args):
        return subprocess.run(
            [MOVIOLA, "keys", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "MOVIOLA_DATA_DIR": str(data_dir)},
            timeout=120,
        )

    return run


@pytest.fixture
def sessions(data_dir):
    def connect():
        engine = db.connect(db.sqlite_url(data_dir))
        engines.append(engine)
        return db.sessions(engine)

    engines = []
    yield connect
    for engine in engines:
        engine.dispose()


def test_create_list_and_revoke(moviola, sessions):
    created = moviola("create", "render farm")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("mvk_") and "\n" not in secret
    assert "cannot be shown again" in created.stderr
    key = keys.verify(sessions(), secret)
    assert key is not None and key.name == "render farm"

    listed = moviola("list")
    assert listed.returncode == 0, listed.stderr
    assert "render farm" in listed.stdout and key.prefix in listed.stdout
    assert key.id in listed.stdout
    assert secret not in listed.stdout and secret[len(key.prefix) :] not in listed.stdout

    revoked = moviola("revoke", key.id)
    assert revoked.returncode == 0, revoked.stderr
    assert keys.verify(sessions(), secret) is None
    assert "revoked" in moviola("list").stdout.lower()


def test_revoke_by_the_listed_prefix(moviola, sessions):
    secret = moviola("create", "ci").stdout.strip()
    assert moviola("revoke", secret[:12]).returncode == 0
    assert keys.verify(sessions(), secret) is None


def test_revoking_an_unknown_key_fails_in_one_line(moviola):
    done = moviola("revoke", "key_nope")
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1
    assert "key_nope" in done.stderr


def test_a_key_needs_a_name(moviola):
    done = moviola("create", "  ")
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1


def keyless_character(sessions, name: str) -> str:
    """A character made without a key, as keyless use of a fresh server leaves one."""
    from moviola.store.models import Character, new_id

    character_id = new_id("char")
    with sessions.begin() as session:
        session.add(Character(id=character_id, owner=None, name=name, video_path="clip.mp4"))
    return character_id


def owner_of(sessions, character_id: str) -> str | None:
    from moviola.store.models import Character

    with sessions() as session:
        return session.get(Character, character_id).owner


def migrated(data_dir, sessions):
    """The data dir's database, brought up to date, as a server leaves it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    connect = sessions()
    db.migrate(connect.kw["bind"])
    return connect


def test_the_first_key_adopts_what_was_made_without_one(moviola, sessions, data_dir):
    connect = migrated(data_dir, sessions)
    first = keyless_character(connect, "Ada")

    created = moviola("create", "me")

    assert created.returncode == 0, created.stderr
    assert "adopted 1 character made without a key" in created.stderr
    key = keys.verify(connect, created.stdout.strip())
    assert owner_of(connect, first) == key.id
    # Later keys adopt nothing unless asked to (keyless use ended with the first key).
    second = keyless_character(connect, "Bea")
    assert "adopted" not in moviola("create", "you").stderr
    assert owner_of(connect, second) is None
    asked = moviola("create", "them", "--adopt")
    assert "adopted 1 character" in asked.stderr
    assert owner_of(connect, second) == keys.verify(connect, asked.stdout.strip()).id


def test_no_adopt_then_adopt_later(moviola, sessions, data_dir):
    connect = migrated(data_dir, sessions)
    character = keyless_character(connect, "Cy")

    created = moviola("create", "me", "--no-adopt")
    assert "adopted" not in created.stderr
    assert owner_of(connect, character) is None

    key = keys.verify(connect, created.stdout.strip())
    adopted = moviola("adopt", key.prefix)
    assert adopted.returncode == 0, adopted.stderr
    assert f"adopted 1 character into {key.id} (me)" in adopted.stdout
    assert owner_of(connect, character) == key.id
    assert moviola("adopt", "key_nope").returncode != 0


def test_data_dir_names_the_library_whose_keys_to_manage(moviola, tmp_path):
    other = tmp_path / "elsewhere"
    created = moviola("--data-dir", str(other), "create", "there")
    assert created.returncode == 0, created.stderr
    engine = db.connect(db.sqlite_url(other))
    try:
        assert keys.verify(db.sessions(engine), created.stdout.strip()).name == "there"
    finally:
        engine.dispose()
    assert "there" not in moviola("list").stdout  # the default data dir has no such key
