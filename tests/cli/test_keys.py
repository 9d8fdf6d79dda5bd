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
