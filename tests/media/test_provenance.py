"""C2PA content credentials: the signing identity, signing Moviola's videos, reading them back."""

import dataclasses
import datetime as dt
import logging
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moviola import __version__, media
from moviola.engine import GenerationRequest, get_model
from moviola.errors import InvalidRequestError, SigningError
from moviola.media import provenance
from moviola.media.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    load_identity,
    read_credentials,
    sign_video,
)
from moviola.render.files import render, seal
from moviola.render.stamp import Stamp


@pytest.fixture
def identity(tmp_path):
    return load_identity(cert=None, key=None, data_dir=tmp_path / "data")


@pytest.fixture
def tiny_video(engine, tmp_path, identity):
    """A tiny model's output, signed as a worker signs it."""
    request = GenerationRequest("a heron", model="tiny", seconds=1, size=(160, 96), seed=4)
    stamp = Stamp(identity=identity)
    files = seal(render(engine, request, tmp_path / "heron.mp4", stamp=stamp), stamp)
    return files


def write_video(path: Path, container: str) -> Path:
    """Eight frames in a container other than MP4, as a camera or a browser would make it."""
    codec, pix_fmt = {"webm": ("libvpx", "yuv420p"), "gif": ("gif", "rgb8")}[container]
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for _ in range(8):
            frame = rng.integers(0, 255, (48, 64, 3), np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate and key that C2PA's profile refuses: self-signed, no key usages."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my own CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "self-signed.pem", tmp_path / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


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
    # The source's own credentials say a model made it: so is every frame of the remix.
    assert credentials["actions"][1]["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    assert credentials["ingredients"] == [
        {"title": "video_source.mp4", "relationship": "parentOf", "state": "untrusted"}
    ]
    lineage = provenance.chain(provenance.read_store(remix))
    assert [depth for depth, _ in lineage] == [0, 1]
    assert lineage[1][1]["manifest_label"] == tiny_video.credentials["manifest_label"]
    assert lineage[1][1]["model"] == "tiny"


@pytest.mark.parametrize("container", ["webm", "gif"])
def test_a_source_in_another_container_is_an_ingredient_too(
    container, tiny_video, identity, tmp_path
):
    # What a phone or a browser uploads for an edit: its type is read from its bytes.
    source = write_video(tmp_path / f"camera.{container}", container)
    edit = tmp_path / "edit.mp4"
    edit.write_bytes(tiny_video.video.read_bytes())
    credentials = sign_video(
        edit,
        identity,
        generator="Moviola 9.9",
        model_id="tiny",
        model_licence=None,
        edited_from=source,
        source_title=f"upload.{container}",
        title="video_edit.mp4",
    )
    assert credentials["errors"] == []
    assert credentials["ingredients"] == [
        {"title": f"upload.{container}", "relationship": "parentOf", "state": None}
    ]
    # Footage no model vouches for, edited by one: a composite.
    assert [a["digital_source_type"] for a in credentials["actions"]] == [
        TRAINED_ALGORITHMIC_MEDIA,
        COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    ]
    store = provenance.read_store(edit)
    assert store["manifests"][store["active_manifest"]]["title"] == "video_edit.mp4"


def test_a_source_c2pa_refuses_is_left_out_and_said_never_fatal(
    tiny_video, identity, tmp_path, caplog
):
    # A WebM declared as an MP4 (what every upload used to be declared as): c2pa refuses it.
    source = write_video(tmp_path / "camera.webm", "webm")
    edit = tmp_path / "edit.mp4"
    edit.write_bytes(tiny_video.video.read_bytes())
    with caplog.at_level(logging.WARNING, "moviola.provenance"):
        credentials = sign_video(
            edit,
            identity,
            generator="Moviola 9.9",
            model_id="tiny",
            model_licence=None,
            edited_from=source,
            source_title="upload.webm",
            source_media_type="video/mp4",
        )
    assert credentials["state"] == "untrusted"  # signed, and intact
    assert credentials["ingredients"] == []
    assert [a["action"] for a in credentials["actions"]] == ["c2pa.created", "c2pa.edited"]
    [note] = credentials["errors"]
    assert "'upload.webm' (video/mp4) could not be added as an ingredient" in note
    assert any("without its source" in r.getMessage() for r in caplog.records)
    assert read_credentials(edit)["errors"] == []  # the file itself is sound


def test_a_certificate_c2pa_refuses_is_found_when_it_is_loaded(tmp_path, identity, clip):
    cert, key = self_signed(tmp_path)
    with pytest.raises(InvalidRequestError, match="cannot sign content credentials") as caught:
        load_identity(cert=cert, key=key, data_dir=tmp_path)
    assert caught.value.param == "c2pa_cert"
    assert "issued by a CA" in caught.value.message
    # Signing with it anyway is a SigningError: the worker fails the job without retrying.
    refused = dataclasses.replace(identity, chain_pem=cert.read_bytes(), key_pem=key.read_bytes())
    video = tmp_path / "video.mp4"
    video.write_bytes(clip[0].read_bytes())
    with pytest.raises(SigningError, match="could not be signed"):
        sign_video(video, refused, generator="Moviola 1.0", model_id="m", model_licence=None)
    assert read_credentials(video) is None  # the file was left as it was


def test_the_private_key_stays_out_of_reprs(identity):
    assert identity.key_pem.decode() not in repr(identity)
    assert "key_pem" not in repr(identity)


def test_only_a_lost_race_counts_as_another_process_creating_the_identity(tmp_path):
    taken = tmp_path / "won" / provenance.DEV_FOLDER
    taken.mkdir(parents=True)
    (taken / "chain.pem").write_text("another process's")
    assert provenance._create_development_identity(taken) is False
    blocked = tmp_path / "file" / provenance.DEV_FOLDER
    blocked.parent.mkdir()
    blocked.write_text("not a folder")  # any other failure says what it is
    with pytest.raises(NotADirectoryError):
        provenance._create_development_identity(blocked)
    assert sorted(p.name for p in blocked.parent.iterdir()) == [provenance.DEV_FOLDER]


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
