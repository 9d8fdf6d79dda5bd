"""C2PA content credentials: who signs Moviola's videos, signing them, and reading them back.

Every MP4 Moviola writes carries a manifest that says it was made by a trained model
(`c2pa.created`, digitalSourceType trainedAlgorithmicMedia), by which generator and model, and —
for a remix, edit or extension — `c2pa.edited` with the source video as its `parentOf`
ingredient, so the lineage can be checked from the file alone.

The signing identity is a PEM certificate chain and its private key. Without one configured, a
development identity (a small CA and a signer certificate it issued) is created once in the data
dir; its credentials verify, but as *untrusted*, since no trust list knows its CA.

c2pa is imported inside the functions that use it, so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import io
import json
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moviola.errors import InvalidRequestError, SigningError
from moviola.media.files import atomic_write
from moviola.media.sniff import sniff_file

log = logging.getLogger("moviola.provenance")

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# An edit of footage that no model made (a camera video, say): part real, part generated.
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
)
DEV_FOLDER = "c2pa-dev"  # under the data dir
DEV_CHAIN, DEV_KEY, DEV_CA = "chain.pem", "key.pem", "ca.pem"
DEV_ORGANIZATION = "Moviola development identity (untrusted)"
_UNTRUSTED = "signingCredential.untrusted"
_DIGITAL = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation"
_STATES = {"Trusted": "valid", "Valid": "untrusted", "Invalid": "invalid"}


@dataclass(frozen=True)
class Identity:
    """A signing certificate chain (end entity first) and its private key, both PEM."""

    chain_pem: bytes
    key_pem: bytes = field(repr=False)  # a secret: never in a log line or a traceback
    algorithm: str  # a c2pa.C2paSigningAlg name: ES256, ES384, ES512, PS256, ED25519
    development: bool  # the local self-signed identity: credentials show as untrusted
    source: str  # where it came from, for the logs
    trust_anchors: str | None = None  # PEM CAs whose signers count as trusted when reading
    created: bool = False  # this call created the development identity


def load_identity(
    *,
    cert: Path | None,
    key: Path | None,
    data_dir: Path,
    trust_anchors: Path | None = None,
) -> Identity:
    """The configured identity, or the development one (created on first use).

    `cert` and `key` come together (`MOVIOLA_C2PA_CERT`, `MOVIOLA_C2PA_KEY`); one without
    the other is a configuration error rather than a silent fall-back to the development
    identity, which would make an operator believe their videos carry their signature.
    """
    anchors = read_trust_anchors(trust_anchors)
    if (cert is None) != (key is None):
        raise InvalidRequestError(
            "set both MOVIOLA_C2PA_CERT and MOVIOLA_C2PA_KEY (a certificate chain and its "
            "private key), or neither for the development identity",
            param="c2pa_cert" if cert is None else "c2pa_key",
        )
    if cert is not None and key is not None:
        chain_pem, key_pem = _read(Path(cert), "certificate"), _read(Path(key), "key")
        algorithm = _algorithm(key_pem)
        _check_pair(chain_pem, key_pem)
        identity = Identity(chain_pem, key_pem, algorithm, False, str(cert), trust_anchors=anchors)
        check_identity(identity)
        log.info("signing content credentials with the certificate in %s", cert)
        return identity
    folder = Path(data_dir) / DEV_FOLDER
    created = False
    if not (folder / DEV_KEY).is_file():
        created = _create_development_identity(folder)
    identity = Identity(
        (folder / DEV_CHAIN).read_bytes(),
        (folder / DEV_KEY).read_bytes(),
        "ES256",
        True,
        str(folder),
        trust_anchors=anchors,
        created=created,
    )
    if created:
        log.warning(
            "created a development signing identity in %s: videos are signed, but their content "
            "credentials show as UNTRUSTED. Set MOVIOLA_C2PA_CERT and MOVIOLA_C2PA_KEY to sign "
            "with a real certificate.",
            folder,
        )
    else:
        log.info("signing with the development identity in %s (untrusted)", folder)
    return identity


def check_identity(identity: Identity) -> None:
    """Sign a tiny MP4 in memory: a certificate that C2PA's profile refuses (self-signed, a CA,
    a missing key usage …) is a configuration error found at start-up, not a failure of every
    job afterwards."""
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": "Moviola"}],
        "title": "start-up check",
        "format": "video/mp4",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": _DIGITAL}]},
            }
        ],
    }
    try:
        with _signer(identity) as signer, c2pa.Builder(manifest) as builder:
            builder.sign(signer, "video/mp4", io.BytesIO(_tiny_mp4()), io.BytesIO())
    except c2pa.C2paError as err:
        raise InvalidRequestError(
            f"the C2PA certificate in {identity.source} cannot sign content credentials ({err}): "
            "C2PA requires an end-entity certificate issued by a CA, with the digitalSignature "
            "key usage and an extended key usage such as emailProtection or documentSigning",
            param="c2pa_cert",
        ) from None


def read_trust_anchors(path: Path | None) -> str | None:
    """The PEM trust anchors file's text (None when none is configured); a missing or
    unreadable file is a configuration error naming the setting."""
    if path is None:
        return None
    try:
        return _read(Path(path), "trust anchors").decode()
    except UnicodeDecodeError:
        raise InvalidRequestError(
            f"the C2PA trust anchors {path} are not a PEM file", param="c2pa_trust_anchors"
        ) from None


def sign_video(
    path: Path,
    identity: Identity,
    *,
    generator: str,
    model_id: str,
    model_licence: str | None,
    edited_from: Path | None = None,
    source_title: str | None = None,
    source_media_type: str | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Sign the MP4 at `path` in place (atomically) and return its credentials.

    `generator` is "Name version" (e.g. "Moviola 0.3.0"); `title` names the video in the
    manifest (its file name when not given). With `edited_from`, the source video becomes the
    `parentOf` ingredient — its own manifest, if it has one, travels inside — and the actions
    say the result was edited from it. `source_media_type` is the source's type (sniffed from
    its bytes when not given): C2PA parses an ingredient as the type it is told.

    A source C2PA cannot take as an ingredient never fails the video: it is signed without the
    ingredient, and the credentials' `errors` say so. A signature that cannot be made at all
    raises `SigningError`.
    """
    import c2pa

    path = Path(path)
    name, _, version = generator.partition(" ")
    agent = {"name": name, **({"version": version} if version else {})}
    parameters = {"model": model_id, **({"model_licence": model_licence} if model_licence else {})}
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    actions: list[dict[str, Any]] = [
        {
            "action": "c2pa.created",
            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": agent,
            "when": now,
            "parameters": parameters,
        }
    ]
    if edited_from is not None:
        actions.append(
            {
                "action": "c2pa.edited",
                "digitalSourceType": _edit_source_type(Path(edited_from)),
                "softwareAgent": agent,
                "when": now,
                "parameters": {**parameters, "ingredientIds": ["source"]},
            }
        )
    manifest = {
        "claim_generator_info": [agent],
        "title": title or path.name,
        "format": "video/mp4",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
    }
    ingredient = None
    if edited_from is not None:
        kind = sniff_file(Path(edited_from)) if source_media_type is None else None
        ingredient = (
            Path(edited_from),
            source_title or Path(edited_from).name,
            source_media_type or (kind.media_type if kind else "application/octet-stream"),
        )
    refused = None
    with _signer(identity) as signer:
        try:
            _sign(c2pa, manifest, signer, path, ingredient)
        except c2pa.C2paError as err:
            if ingredient is None:
                raise SigningError(f"the video could not be signed: {err}") from err
            # The lineage is worth less than the video: sign without the ingredient, say so.
            refused = (
                f"the source {ingredient[1]!r} ({ingredient[2]}) could not be added as an "
                f"ingredient ({err}): the file does not carry its lineage"
            )
            log.warning("signing %s without its source: %s", path.name, refused)
            unlinked = {**actions[-1], "parameters": parameters}
            manifest["assertions"] = [
                {"label": "c2pa.actions", "data": {"actions": [*actions[:-1], unlinked]}}
            ]
            try:
                _sign(c2pa, manifest, signer, path, None)
            except c2pa.C2paError as again:
                raise SigningError(f"the video could not be signed: {again}") from again
    credentials = read_credentials(path, trust_anchors=identity.trust_anchors)
    if credentials is None:  # c2pa wrote a file it cannot read back: never ship that silently
        raise SigningError(f"{path.name} carries no manifest after signing")
    if refused:
        credentials["errors"].append(refused)
    return credentials


def read_credentials(path: Path, *, trust_anchors: str | None = None) -> dict[str, Any] | None:
    """The file's content credentials and their validation, or None when it carries none.

    `trust_anchors` (PEM) are the CAs whose signers count as trusted ("valid"); a signature
    that checks out under any other CA is "untrusted"; a broken one or changed bytes "invalid".
    """
    store = read_store(path, trust_anchors=trust_anchors)
    if store is None:
        return None
    if "error" in store:
        return _empty("invalid", [store["error"]])
    return summarize(store)


def read_store(path: Path, *, trust_anchors: str | None = None) -> dict[str, Any] | None:
    """The file's whole manifest store as c2pa reports it (every manifest of the lineage,
    with validation results), `{"error": …}` when it is there but unreadable, None if absent."""
    import c2pa

    context = (
        c2pa.Context.from_dict({"trust": {"trust_anchors": trust_anchors}})
        if trust_anchors
        else None
    )
    try:
        reader = c2pa.Reader.try_create(str(path), context=context)
    except c2pa.C2paError.NotSupported:
        return None
    except c2pa.C2paError as err:  # a manifest is there but cannot be read: broken
        return {"error": f"the manifest cannot be read: {err}"}
    if reader is None:
        return None
    with reader:
        return json.loads(reader.json())


def chain(store: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The lineage, newest first: (depth, credentials) for the active manifest, then for the
    manifest of each ingredient that carried one, and theirs in turn."""
    manifests = store.get("manifests") or {}
    out: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()

    def visit(label: str | None, depth: int, results: dict[str, Any] | None) -> None:
        if not label or label in seen or label not in manifests:
            return
        seen.add(label)
        view = {**store, "active_manifest": label}
        if depth:  # an ingredient's manifest: judged by the results recorded for it
            view["validation_results"] = results or {}
            state = _ingredient_state({"active_manifest": label, "validation_results": results})
            view["validation_state"] = {"valid": "Trusted", "untrusted": "Valid"}.get(
                state or "", "Invalid"
            )
        out.append((depth, summarize(view)))
        for ingredient in manifests[label].get("ingredients", []):
            visit(
                ingredient.get("active_manifest"),
                depth + 1,
                ingredient.get("validation_results"),
            )

    visit(store.get("active_manifest"), 0, None)
    return out


def summarize(store: dict[str, Any]) -> dict[str, Any]:
    """The credentials dict of a c2pa manifest store (the Reader's JSON)."""
    label = store.get("active_manifest")
    manifest = store.get("manifests", {}).get(label) or {}
    results = store.get("validation_results") or {}
    failures = list((results.get("activeManifest") or {}).get("failure", []))
    for delta in results.get("ingredientDeltas") or []:
        failures += (delta.get("validationDeltas") or {}).get("failure", [])
    if not results:  # older readers: only the flat list
        failures = list(store.get("validation_status") or [])
    state = _STATES.get(store.get("validation_state", ""), "invalid")
    errors = [
        f"{f.get('code')}: {f.get('explanation', '')}".rstrip(": ")
        for f in failures
        if f.get("code") != _UNTRUSTED
    ]
    actions = [
        action
        for assertion in manifest.get("assertions", [])
        if assertion.get("label", "").startswith("c2pa.actions")
        for action in assertion.get("data", {}).get("actions", [])
    ]
    created: dict[str, Any] = next((a for a in actions if a.get("action") == "c2pa.created"), {})
    signature = manifest.get("signature_info") or {}
    return {
        "state": state,
        "signer": signature.get("common_name") or signature.get("issuer"),
        "generator": _generator(manifest),
        "signed_at": signature.get("time") or created.get("when"),
        "actions": [
            {
                "action": a.get("action"),
                "digital_source_type": a.get("digitalSourceType"),
                "when": a.get("when"),
            }
            for a in actions
        ],
        "ingredients": [
            {
                "title": i.get("title"),
                "relationship": i.get("relationship"),
                "state": _ingredient_state(i),
            }
            for i in manifest.get("ingredients", [])
        ],
        "model": (created.get("parameters") or {}).get("model"),
        "errors": errors,
        "manifest_label": label,
    }


# --- internals ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _signer(identity: Identity) -> Any:
    import c2pa

    info = c2pa.C2paSignerInfo(
        getattr(c2pa.C2paSigningAlg, identity.algorithm),
        identity.chain_pem,
        identity.key_pem,
        None,
    )
    try:
        signer = c2pa.Signer.from_info(info)
    except c2pa.C2paError as err:
        # No path in the message: a job's failure is shown to API clients.
        raise SigningError(f"the C2PA signer cannot be made: {err}") from err
    with signer:
        yield signer


def _sign(
    c2pa: Any,
    manifest: dict[str, Any],
    signer: Any,
    path: Path,
    ingredient: tuple[Path, str, str] | None,
) -> None:
    with c2pa.Builder(manifest) as builder:
        if ingredient is not None:
            source, title, media_type = ingredient
            with open(source, "rb") as stream:
                builder.add_ingredient(
                    {"title": title, "relationship": "parentOf", "label": "source"},
                    media_type,
                    stream,
                )
        with atomic_write(path) as tmp, open(path, "rb") as unsigned, open(tmp, "w+b") as signed:
            builder.sign(signer, "video/mp4", unsigned, signed)


def _edit_source_type(source: Path) -> str:
    """What an edit of `source` is: generated through and through when the source's own intact
    credentials say a model made it, a composite of real and generated media otherwise (a
    camera video, or anything whose origin the file does not vouch for)."""
    store = read_store(source)
    if store is None or "error" in store:
        return COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    credentials = summarize(store)
    kinds = {a["digital_source_type"] for a in credentials["actions"]}
    if credentials["state"] != "invalid" and kinds == {TRAINED_ALGORITHMIC_MEDIA}:
        return TRAINED_ALGORITHMIC_MEDIA
    return COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA


def _tiny_mp4() -> bytes:
    """A one-frame 16×16 H.264 MP4, made in memory: something real to sign."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return buffer.getvalue()


def _empty(state: str, errors: list[str]) -> dict[str, Any]:
    return {
        "state": state,
        "signer": None,
        "generator": None,
        "signed_at": None,
        "actions": [],
        "ingredients": [],
        "model": None,
        "errors": errors,
        "manifest_label": None,
    }


def _generator(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info") or []
    if info:
        return " ".join(p for p in (info[0].get("name"), info[0].get("version")) if p) or None
    return manifest.get("claim_generator")


def _ingredient_state(ingredient: dict[str, Any]) -> str | None:
    """An ingredient's own manifest as it was when it was added: None when it had none."""
    if not ingredient.get("active_manifest"):
        return None
    results = ingredient.get("validation_results") or {}
    failures = (results.get("activeManifest") or {}).get("failure") or ingredient.get(
        "validation_status", []
    )
    codes = {f.get("code") for f in failures}
    if codes - {_UNTRUSTED}:
        return "invalid"
    return "untrusted" if _UNTRUSTED in codes else "valid"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        param = {"certificate": "c2pa_cert", "key": "c2pa_key"}.get(what, "c2pa_trust_anchors")
        raise InvalidRequestError(
            f"cannot read the C2PA {what} {path}: {err.strerror}", param=param
        ) from None


def _check_pair(chain_pem: bytes, key_pem: bytes) -> None:
    """The chain's first certificate must be the key's: found now, not at the first signing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        signer = x509.load_pem_x509_certificates(chain_pem)[0]
    except ValueError as err:
        raise InvalidRequestError(
            f"the C2PA certificate is not a PEM certificate chain: {err}", param="c2pa_cert"
        ) from None
    public = serialization.load_pem_private_key(key_pem, password=None).public_key()
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if signer.public_key().public_bytes(*raw) != public.public_bytes(*raw):
        raise InvalidRequestError(
            "the C2PA key does not belong to the first certificate of the chain (the signer's "
            "certificate comes first, then its intermediates)",
            param="c2pa_key",
        )


def _algorithm(key_pem: bytes) -> str:
    """The C2PA signing algorithm that fits a private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as err:
        raise InvalidRequestError(
            f"the C2PA key is not an unencrypted PEM private key: {err}", param="c2pa_key"
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ED25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    raise InvalidRequestError(
        "the C2PA key must be EC P-256/P-384/P-521, Ed25519 or RSA", param="c2pa_key"
    )


def _create_development_identity(folder: Path) -> bool:
    """Write a CA and a signer certificate into `folder`; False when another process won.

    The files are written into a fresh folder that is renamed into place in one step, so a
    concurrent first start (the server and a worker) never sees half an identity and never
    ends up with two.
    """
    from cryptography.hazmat.primitives import serialization

    ca_pem, chain_pem, key = _development_certificates()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}")
    staging.mkdir(mode=0o700)
    try:
        (staging / DEV_CA).write_bytes(ca_pem)
        (staging / DEV_CHAIN).write_bytes(chain_pem)
        fd = os.open(staging / DEV_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.rename(staging, folder)
        except OSError as err:
            if err.errno in (errno.EEXIST, errno.ENOTEMPTY):  # another process created it first
                return False
            raise
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)


def _development_certificates() -> tuple[bytes, bytes, Any]:
    """A CA and an end-entity certificate that satisfy C2PA's certificate profile: P-256,
    the signer not a CA, digitalSignature key usage, an allowed extended key usage
    (emailProtection), key identifiers linking it to its issuer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    years = dt.timedelta(days=3650)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
            ]
        )

    def usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("Moviola development CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + years)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("Moviola development signer"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + years)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    return ca_pem, cert.public_bytes(pem) + ca_pem, key
