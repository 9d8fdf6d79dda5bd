"""`moviola verify` and `moviola audit`, through the installed entry point."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moviola import media
from moviola.media.provenance import load_identity, sign_video
from moviola.store import audit, db

MOVIOLA = str(Path(sys.executable).parent / "moviola")


def moviola(*args, data_dir: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [MOVIOLA, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "MOVIOLA_DATA_DIR": str(data_dir), "COLUMNS": "200", **(env or {})},
        timeout=120,
    )


@pytest.fixture
def signed(tmp_path):
    """A source video and a remix of it, both signed with the development identity."""
    identity = load_identity(cert=None, key=None, data_dir=tmp_path / "data")
    rng = np.random.default_rng(0)
    paths = []
    for name in ("source.mp4", "remix.mp4"):
        path = tmp_path / name
        media.write_mp4(rng.integers(0, 255, (8, 48, 64, 3), np.uint8), path, fps=8)
        paths.append(path)
    source, remix = paths
    sign_video(source, identity, generator="Moviola 1.0", model_id="tiny", model_licence=None)
    sign_video(
        remix,
        identity,
        generator="Moviola 1.0",
        model_id="tiny",
        model_licence=None,
        edited_from=source,
    )
    return source, remix


def test_verify_prints_the_chain_and_passes_intact_credentials(signed, tmp_path):
    _, remix = signed
    done = moviola("verify", remix, data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "content credentials UNTRUSTED" in out
    assert "action c2pa.created  (trainedAlgorithmicMedia)" in out
    assert "action c2pa.edited" in out
    assert "ingredient 'source.mp4' (parentOf): untrusted" in out
    assert "ingredient's manifest urn:c2pa:" in out  # the source's own manifest, one level down
    assert "model tiny" in out
    strict = moviola("verify", "--require-trusted", remix, data_dir=tmp_path / "data")
    assert strict.returncode == 4
    as_json = json.loads(moviola("verify", "--json", remix, data_dir=tmp_path / "data").stdout)
    assert as_json["state"] == "untrusted" and as_json["generator"] == "Moviola 1.0"


def test_verify_fails_a_tampered_file_and_one_without_credentials(signed, tmp_path):
    source, _ = signed
    data = bytearray(source.read_bytes())
    start = data.index(b"mdat") + 64
    data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
    source.write_bytes(bytes(data))
    done = moviola("verify", source, data_dir=tmp_path / "data")
    assert done.returncode == 1
    assert "INVALID" in done.stdout and "bmffHash.mismatch" in done.stdout
    plain = tmp_path / "plain.mp4"
    media.write_mp4(np.zeros((4, 48, 64, 3), np.uint8), plain, fps=8)
    none = moviola("verify", plain, data_dir=tmp_path / "data")
    assert none.returncode == 3 and "no content credentials" in none.stdout
    missing = moviola("verify", tmp_path / "nope.mp4", data_dir=tmp_path / "data")
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_verify_tells_a_configuration_problem_from_an_invalid_file(signed, tmp_path):
    _, remix = signed
    missing = {"MOVIOLA_C2PA_TRUST_ANCHORS": str(tmp_path / "anchors.pem")}
    done = moviola("verify", remix, data_dir=tmp_path / "data", env=missing)
    assert done.returncode == 2  # not 1: nothing is known about the file yet
    [line] = done.stderr.splitlines()
    assert "cannot read the C2PA trust anchors" in line and "anchors.pem" in line
    helped = moviola("verify", "--help", data_dir=tmp_path / "data").stdout
    for line in ("0  intact", "1  invalid", "2  the check could not", "3  the file carries no"):
        assert line in helped
    assert "4  with --require-trusted" in helped


def test_audit_lists_filters_and_exports(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    engine = db.connect(f"sqlite:///{data_dir / 'moviola.db'}")
    db.migrate(engine)
    sessions = db.sessions(engine)
    audit.record(sessions, actor=None, action="create", video_id="video_a")
    audit.record(sessions, actor="key_1", action="download", video_id="video_a")
    audit.record(
        sessions, actor="key_1", action="moderation", detail={"reason": "blocked term 'gore'"}
    )

    table = moviola("audit", data_dir=data_dir)
    assert table.returncode == 0, table.stderr
    assert "audit log (3 entries)" in table.stdout and "blocked term 'gore'" in table.stdout

    lines = moviola("audit", "--actor", "key_1", "--format", "jsonl", data_dir=data_dir)
    assert [json.loads(line)["action"] for line in lines.stdout.splitlines()] == [
        "download",
        "moderation",
    ]
    local = moviola("audit", "--actor", "local", "-f", "jsonl", data_dir=data_dir)
    assert [json.loads(line)["video_id"] for line in local.stdout.splitlines()] == ["video_a"]

    exported = tmp_path / "audit.csv"
    done = moviola("audit", "--action", "download", "-f", "csv", "-o", exported, data_dir=data_dir)
    assert done.returncode == 0 and "1 entry written" in done.stderr
    [row] = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert (row["actor"], row["action"], row["video_id"]) == ("key_1", "download", "video_a")

    wrong = moviola("audit", "--action", "rename", data_dir=data_dir)
    assert wrong.returncode == 2 and "--action must be one of" in wrong.stderr
    bad_time = moviola("audit", "--since", "yesterday", data_dir=data_dir)
    assert bad_time.returncode == 2 and "ISO 8601" in bad_time.stderr
    for limit in ("-1", "0"):  # not "everything"
        refused = moviola("audit", "--limit", limit, data_dir=data_dir)
        assert refused.returncode == 2 and "--limit must be 1 or more" in refused.stderr
    newest = moviola("audit", "--limit", "1", "-f", "jsonl", data_dir=data_dir)
    assert [json.loads(line)["action"] for line in newest.stdout.splitlines()] == ["moderation"]
