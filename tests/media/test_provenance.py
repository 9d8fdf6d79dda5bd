"""C2PA content credentials: the signing identity, signing Moviola's videos, reading them back."""

import logging
import threading
from pathlib import Path

import pytest

from moviola import __version__, media
from moviola.engine import GenerationRequest, get_model
from moviola.errors import InvalidRequestError
from moviola.jobs.render import render
from moviola.jobs.trust import Stamp
from moviola.media import provenance
from moviola.media.provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    load_identity,
    read_credentials,
    sign_video,
)


@pytest.fixture
def identity(tmp_path):
    return load_identity(cert=None, key=None, data_dir=tmp_path / "data")


@pytest.fixture
def tiny_video(engine, tmp_path, identity):
    """A tiny model's output, signed as a worker signs it."""
    request = GenerationRequest("a heron", model="tiny", seconds=1, size=(160, 96), seed=4)
    files = render(engine, request, tmp_path / "heron.mp4", stamp=Stamp(identity=identity))
    return files


def flip_bytes_in_mdat(path: Path) -> None:
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 64
    data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
    path.write_bytes(bytes(data))


def test_the_development_identity_is_created_once_announced_and_reused(tmp_path, caplog):
    with caplog.at_level(logging.INFO, "moviola.provenance"):
        first = load_identity(cert=None, key=None, data_dir=tmp_path)
        again = load_identity(cert=None, key=None, data_dir=tmp_path)
    assert first.development and first.created and not again.created
    assert (first.key_pem, first.chain_pem) == (again.key_pem, again.chain_pem)
    assert first.algorithm == "ES256"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "UNTRUSTED" in warnings[0]
    assert "MOVIOLA_C2PA_CERT" in warnings[0]
    key_file = tmp_path / provenance.DEV_FOLDER / provenance.DEV_KEY
    assert key_file.stat().st_mode & 0o077 == 0  # the private key is the owner's alone


def test_processes_starting_together_end_up_with_one_identity(tmp_path):
    found = []
    threads = [
        threading.Thread(
            target=lambda: found.append(load_identity(cert=None, key=None, data_dir=tmp_path))
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({identity.key_pem for identity in found}) == 1
    assert sum(identity.created for identity in found) == 1
    assert [p.name for p in tmp_path.iterdir()] == [provenance.DEV_FOLDER]  # no staging left


def test_a_tiny_output_is_signed_with_what_made_it(tiny_video):
    credentials = tiny_video.credentials
    assert credentials == read_credentials(tiny_video.video)
    assert credentials["state"] == "untrusted"  # intact, but no trust list knows the dev CA
    assert credentials["errors"] == []
    assert credentials["signer"] == "Moviola development signer"
    assert credentials["generator"] == f"Moviola {__version__}"
    assert credentials["model"] == "tiny"
    assert credentials["manifest_label"].startswith("urn:c2pa:")
    assert credentials["signed_at"]
    [created] = credentials["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    assert credentials["ingredients"] == []
    # The licence travels in the action's parameters.
    store = provenance.read_store(tiny_video.video)
    manifest = store["manifests"][store["active_manifest"]]
    [actions] = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    assert actions["data"]["actions"][0]["parameters"]["model_licence"] == (
        get_model("tiny").license
    )
    # Still a video that plays: signing added a box, it changed no frame.
    assert media.probe(tiny_video.video).frames == tiny_video.info.frames


def test_a_remix_carries_its_source_as_a_verifiable_ingredient(tiny_video, identity, tmp_path):
    remix = tmp_path / "remix.mp4"
    remix.write_bytes(tiny_video.video.read_bytes())  # any MP4 will do as the new output
    credentials = sign_video(
        remix,
        identity,
        generator="Moviola 9.9",
        model_id="tiny",
        model_licence=None,
        edited_from=tiny_video.video,
        source_title="video_source.mp4",
    )
    assert [a["action"] for a in credentials["actions"]] == ["c2pa.created", "c2pa.edited"]
    assert credentials["ingredients"] == [
        {"title": "video_source.mp4", "relationship": "parentOf", "state": "untrusted"}
    ]
    lineage = provenance.chain(provenance.read_store(remix))
    assert [depth for depth, _ in lineage] == [0, 1]
    assert lineage[1][1]["manifest_label"] == tiny_video.credentials["manifest_label"]
    assert lineage[1][1]["model"] == "tiny"


def test_changed_bytes_make_the_credentials_invalid(tiny_video):
    flip_bytes_in_mdat(tiny_video.video)
    credentials = read_credentials(tiny_video.video)
    assert credentials["state"] == "invalid"
    assert any("bmffHash.mismatch" in error for error in credentials["errors"])


def test_a_trusted_ca_makes_the_credentials_valid(tiny_video, tmp_path):
    ca = (tmp_path / "data" / provenance.DEV_FOLDER / provenance.DEV_CA).read_text()
    assert read_credentials(tiny_video.video, trust_anchors=ca)["state"] == "valid"


def test_a_file_without_a_manifest_has_no_credentials(clip):
    path, _, _ = clip
    assert read_credentials(path) is None


def test_a_configured_certificate_signs_instead_of_the_development_one(identity, tmp_path, clip):
    # A chain and key on disk, as an operator configures them (here: a copy of the dev pair).
    folder = tmp_path / "data" / provenance.DEV_FOLDER
    real = load_identity(
        cert=folder / provenance.DEV_CHAIN, key=folder / provenance.DEV_KEY, data_dir=tmp_path
    )
    assert not real.development and real.algorithm == "ES256"
    video = tmp_path / "video.mp4"
    video.write_bytes(clip[0].read_bytes())
    signed = sign_video(video, real, generator="Moviola 1.0", model_id="m", model_licence="MIT")
    assert (signed["state"], signed["model"]) == ("untrusted", "m")
    with pytest.raises(InvalidRequestError, match="both MOVIOLA_C2PA_CERT and MOVIOLA_C2PA_KEY"):
        load_identity(cert=folder / provenance.DEV_CHAIN, key=None, data_dir=tmp_path)
    with pytest.raises(InvalidRequestError, match="not an unencrypted PEM private key"):
        load_identity(cert=folder / provenance.DEV_CHAIN, key=folder / "ca.pem", data_dir=tmp_path)
    other = load_identity(cert=None, key=None, data_dir=tmp_path / "other")  # another key
    (tmp_path / "other.pem").write_bytes(other.key_pem)
    with pytest.raises(InvalidRequestError, match="does not belong to the first certificate"):
        load_identity(
            cert=folder / provenance.DEV_CHAIN, key=tmp_path / "other.pem", data_dir=tmp_path
        )
