"""Importing into a library: bytes kept exactly, metadata recovered, safe to repeat."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from moviola.errors import InvalidRequestError
from moviola.importer.library import MARKER, Library
from moviola.importer.metadata import parse_time
from moviola.importer.run import run_import
from moviola.importer.sources import walk
from moviola.store.models import Video


def run(settings, *paths, dry_run=False, owner=None):
    with Library(settings, owner=owner, dry_run=dry_run) as library, walk(list(paths)) as found:
        return run_import(library, found.candidates, problems=found.problems)


def rows(settings) -> list[Video]:
    from moviola.store import db

    engine = db.connect(settings.db_url)
    try:
        with db.sessions(engine)() as session:
            return list(session.execute(select(Video).order_by(Video.seq)).scalars())
    finally:
        engine.dispose()


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_videos_arrive_bit_identical_completed_with_previews(tmp_path, settings, clip):
    sources = [
        clip(tmp_path / "src" / "a.mp4", 1),
        clip(tmp_path / "src" / "b.mov", 2),
        clip(tmp_path / "src" / "c.webm", 3),
        clip(tmp_path / "src" / "d.gif", 4),
    ]
    report = run(settings, tmp_path / "src")
    assert report.counts()["imported"] == 4 and not report.failed

    imported = {Path(row.origin["location"]).name: row for row in rows(settings)}
    assert set(imported) == {"a.mp4", "b.mov", "c.webm", "d.gif"}
    mimes = {"a.mp4": "video/mp4", "b.mov": "video/quicktime", "c.webm": "video/webm"}
    mimes["d.gif"] = "image/gif"
    for source in sources:
        row = imported[source.name]
        assert row.kind == "import" and row.status == "completed" and row.progress == 100
        video = row.files["video"]
        assert Path(video["path"]).read_bytes() == source.read_bytes()
        assert row.content_sha256 == video["sha256"] == sha(source)
        assert video["mime"] == mimes[source.name]
        assert Path(video["path"]).suffix == source.suffix
        assert row.size == "64x48" and row.seconds == "1"
        assert row.result["frames"] == 8 and row.result["render_size"] == [64, 48]
        with Image.open(row.files["thumbnail"]["path"]) as thumb:
            assert thumb.format == "WEBP" and thumb.size == (64, 48)
        with Image.open(row.files["spritesheet"]["path"]) as sprite:
            assert sprite.format == "JPEG"
        assert row.origin["source"] == "folder"
        assert not (Path(video["path"]).parent / MARKER).exists()


def test_the_same_import_twice_adds_nothing(tmp_path, settings, clip):
    for i in range(3):
        clip(tmp_path / "src" / f"{i}.mp4", i)
    clip(tmp_path / "copy" / "same-as-0.mp4", 0)  # the same bytes under another name

    first = run(settings, tmp_path / "src", tmp_path / "copy")
    assert first.counts()["imported"] == 3 and first.counts()["duplicate"] == 1
    before = [(row.id, row.seq) for row in rows(settings)]
    folders = sorted(p.name for p in settings.blobs_path.iterdir())

    second = run(settings, tmp_path / "src", tmp_path / "copy")
    assert second.counts()["imported"] == 0 and second.counts()["duplicate"] == 4
    assert [(row.id, row.seq) for row in rows(settings)] == before
    assert sorted(p.name for p in settings.blobs_path.iterdir()) == folders


def test_metadata_is_recovered_with_where_it_was_found(tmp_path, settings, clip, sidecar):
    clip(
        tmp_path / "tagged.mp4",
        1,
        tags={
            "title": "Harbour",
            "comment": "boats rocking in a harbour at night",
            "creation_time": "2025-10-10T03:06:10.000000Z",
        },
    )
    clip(tmp_path / "side.mp4", 2, tags={"comment": "loses to the sidecar"})
    sidecar(
        tmp_path / "side.json",
        {"prompt": "a lighthouse", "model": "sora-2", "created_at": 1_700_000_000, "id": "gen_x"},
    )
    run(settings, tmp_path)
    by_name = {Path(row.origin["location"]).name: row for row in rows(settings)}

    tagged = by_name["tagged.mp4"]
    assert tagged.prompt == "boats rocking in a harbour at night"
    assert tagged.created_at == parse_time("2025-10-10T03:06:10Z")
    assert tagged.origin["title"] == "Harbour"
    assert tagged.origin["found"] == {
        "prompt": "mp4 tags",
        "title": "mp4 tags",
        "created_at": "mp4 tags",
    }
    side = by_name["side.mp4"]
    assert (side.prompt, side.model, side.created_at) == ("a lighthouse", "sora-2", 1_700_000_000)
    assert side.origin["original_id"] == "gen_x"
    assert side.origin["found"]["prompt"] == "sidecar json"


def test_a_broken_file_is_reported_and_the_rest_goes_on(tmp_path, settings, clip):
    good = clip(tmp_path / "good.mp4", 1, frames=24)
    data = good.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video")
    (tmp_path / "empty.webm").write_bytes(b"")
    clip(tmp_path / "really-a-webm.mp4", 2, container="webm")  # a wrong extension

    report = run(settings, tmp_path)
    results = {Path(o.location).name: o for o in report.outcomes}
    assert results["good.mp4"].status == "imported"
    assert results["really-a-webm.mp4"].status == "imported"
    for name in ("truncated.mp4", "notes.mp4", "empty.webm"):
        assert results[name].status == "failed" and results[name].reason, name
    # Cut before its index (the moov box, at the end of a file written as it was encoded).
    assert results["truncated.mp4"].reason.startswith("not a readable video")
    assert results["empty.webm"].reason == "file is empty"
    assert str(tmp_path) not in results["notes.mp4"].reason  # the path is in `location`

    kept = {Path(row.origin["location"]).name: row for row in rows(settings)}
    assert set(kept) == {"good.mp4", "really-a-webm.mp4"}
    webm = kept["really-a-webm.mp4"].files["video"]
    assert webm["mime"] == "video/webm" and webm["path"].endswith("video.webm")
    assert sorted(p.name for p in settings.blobs_path.iterdir()) == sorted(kept[n].id for n in kept)


def test_lineage_is_relinked_whatever_order_the_videos_arrive_in(tmp_path, settings, clip, sidecar):
    # "a_remix" sorts (and so is imported) before its parent "b_parent".
    clip(tmp_path / "a_remix.mp4", 1)
    sidecar(tmp_path / "a_remix.json", {"id": "gen_2", "remixed_from_video_id": "gen_1"})
    clip(tmp_path / "b_parent.mp4", 2)
    sidecar(tmp_path / "b_parent.json", {"id": "gen_1"})
    clip(tmp_path / "c_orphan.mp4", 3)
    sidecar(tmp_path / "c_orphan.json", {"id": "gen_3", "remixed_from_video_id": "gen_gone"})

    report = run(settings, tmp_path)
    assert (report.lineage_linked, report.lineage_missing) == (1, 1)
    by_original = {row.origin["original_id"]: row for row in rows(settings)}
    assert by_original["gen_2"].remixed_from_video_id == by_original["gen_1"].id
    assert by_original["gen_3"].remixed_from_video_id is None
    assert by_original["gen_3"].origin["remixed_from"] == "gen_gone"


def test_a_dry_run_writes_nothing(tmp_path, settings, clip):
    clip(tmp_path / "src" / "a.mp4", 1)
    (tmp_path / "src" / "broken.mp4").write_bytes(b"\0" * 100)
    report = run(settings, tmp_path / "src", dry_run=True)
    assert report.counts()["would_import"] == 1 and report.counts()["failed"] == 1
    assert not settings.data_dir.exists()  # not even an empty database

    run(settings, tmp_path / "src")
    clip(tmp_path / "src" / "b.mp4", 2)
    listing = sorted(os.walk(settings.data_dir))
    database = (settings.data_dir / "moviola.db").read_bytes()
    report = run(settings, tmp_path / "src", dry_run=True)
    assert report.counts() == {
        "imported": 0,
        "would_import": 1,
        "duplicate": 1,
        "skipped": 0,
        "failed": 1,
    }
    assert sorted(os.walk(settings.data_dir)) == listing
    assert (settings.data_dir / "moviola.db").read_bytes() == database


def test_a_dry_run_reads_archive_entries_in_place(tmp_path, settings, clip):
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.write(clip(tmp_path / "a.mp4", 1), "deep/a.mp4")
        out.writestr("deep/broken.mp4", b"nope")
    report = run(settings, archive, dry_run=True)
    statuses = {Path(o.location).name: o.status for o in report.outcomes}
    assert statuses == {"a.mp4": "would_import", "broken.mp4": "failed"}


def test_archive_entries_are_streamed_into_the_library(tmp_path, settings, clip):
    archive = tmp_path / "in.zip"
    a = clip(tmp_path / "a.mp4", 1)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(a, "x/y/a.mp4")
        out.writestr("x/y/a.txt", "a prompt from the archive")
        out.writestr("../evil.mp4", a.read_bytes())
    report = run(settings, archive)
    results = {Path(o.location).name: o for o in report.outcomes}
    assert results["a.mp4"].status == "imported"
    assert results["evil.mp4"].status == "failed" and "zip-slip" in results["evil.mp4"].reason
    (row,) = rows(settings)
    assert row.prompt == "a prompt from the archive" and row.origin["source"] == "zip"
    assert Path(row.files["video"]["path"]).read_bytes() == a.read_bytes()
    assert not any(p.name.startswith(".import-") for p in settings.blobs_path.iterdir())


def test_content_credentials_are_read_and_kept_as_they_are(tmp_path, settings, clip):
    from moviola.media.provenance import load_identity, read_credentials, sign_video

    signed = clip(tmp_path / "src" / "signed.mp4", 1)
    identity = load_identity(cert=None, key=None, data_dir=tmp_path / "signer")
    sign_video(signed, identity, generator="Elsewhere 1.0", model_id="m-1", model_licence=None)
    original = signed.read_bytes()
    clip(tmp_path / "src" / "plain.mp4", 2)

    run(settings, tmp_path / "src")
    by_name = {Path(row.origin["location"]).name: row for row in rows(settings)}
    kept = by_name["signed.mp4"]
    assert Path(kept.files["video"]["path"]).read_bytes() == original  # never re-signed
    assert kept.credentials == read_credentials(signed)
    assert kept.credentials["state"] == "untrusted"
    assert kept.credentials["generator"].startswith("Elsewhere")
    assert kept.origin["found"].get("generator") == "c2pa"
    assert by_name["plain.mp4"].credentials is None


def test_an_import_killed_before_its_row_leaves_nothing_visible_and_is_redone(
    tmp_path, settings, clip
):
    clip(tmp_path / "src" / "a.mp4", 1)
    run(settings, tmp_path / "src")
    (row,) = rows(settings)
    # What a kill between the files and the row leaves: a folder, marked, with no row; and a
    # staging folder of a process that is gone.
    orphan = settings.blobs_path / ("video_" + "0" * 32)
    orphan.mkdir()
    (orphan / "video.mp4").write_bytes(b"half")
    (orphan / MARKER).write_text("999999999")
    staging = settings.blobs_path / ".import-999999999"
    staging.mkdir()
    (staging / "x.part").write_bytes(b"half")

    report = run(settings, tmp_path / "src")
    assert report.cleaned == 2 and report.counts()["duplicate"] == 1
    assert sorted(p.name for p in settings.blobs_path.iterdir()) == [row.id]


def test_an_owner_must_be_a_live_key(settings):
    with pytest.raises(InvalidRequestError, match="no live API key"):
        Library(settings, owner="key_nope")


def test_the_report_is_json(tmp_path, settings, clip):
    clip(tmp_path / "src" / "a.mp4", 1)
    (tmp_path / "src" / "b.mp4").write_text("x")
    report = run(settings, tmp_path / "src")
    report.write(tmp_path / "report.json")
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["counts"]["imported"] == 1 and written["counts"]["failed"] == 1
    assert {v["status"] for v in written["videos"]} == {"imported", "failed"}


def _zeroed(path: Path) -> Path:
    """A clip whose index is whole but whose picture data is zeros: it probes, never decodes."""
    data = bytearray(path.read_bytes())
    at = data.find(b"mdat") + 4
    data[at:] = bytes(len(data) - at)
    path.write_bytes(bytes(data))
    return path


def test_a_video_that_fails_midway_leaves_no_files_and_no_library_path(tmp_path, settings, clip):
    import av

    # The clip rewritten with its index first, so that zeroing its picture data leaves an
    # index that probes well.
    broken = tmp_path / "src" / "undecodable.mp4"
    broken.parent.mkdir()
    with (
        av.open(str(clip(tmp_path / "whole.mp4", 1, frames=24))) as source,
        av.open(str(broken), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    _zeroed(broken)
    clip(tmp_path / "src" / "good.mp4", 2)

    report = run(settings, tmp_path / "src")
    outcome = {Path(o.location).name: o for o in report.outcomes}["undecodable.mp4"]
    assert outcome.status == "failed" and outcome.reason.startswith("damaged video data")
    assert str(settings.blobs_path) not in outcome.reason
    (row,) = rows(settings)  # the good one; nothing of the other anywhere
    assert sorted(p.name for p in settings.blobs_path.iterdir()) == [row.id]


def test_recovery_judges_other_hosts_by_age_and_this_host_by_process(tmp_path, settings, clip):
    import time

    from moviola.importer import staging

    clip(tmp_path / "src" / "a.mp4", 1)
    run(settings, tmp_path / "src")
    here = staging.writer()

    def leftover(name, **who):
        folder = settings.blobs_path / name
        folder.mkdir()
        (folder / MARKER).write_text(json.dumps({**here, "started": time.time(), **who}))

    leftover("video_" + "1" * 32, pid=999_999_999)  # this host, this boot, process gone
    leftover("video_" + "2" * 32, pid=os.getpid())  # this host, alive: being written
    leftover("video_" + "3" * 32, host="render-2", pid=1)  # elsewhere, recent: may be alive
    leftover("video_" + "4" * 32, host="render-2", started=time.time() - 7 * 3600)  # stale
    leftover("video_" + "5" * 32, boot="an-earlier-boot", pid=os.getpid())  # before a reboot
    leftover(".import-0123456789abcdef", pid=999_999_999)

    report = run(settings, tmp_path / "src")
    assert report.cleaned == 3
    kept = {p.name for p in settings.blobs_path.iterdir()}
    assert kept == {rows(settings)[0].id, *("video_" + n * 32 for n in "235")}


def test_a_folder_being_written_by_another_import_is_never_overwritten(tmp_path, settings, clip):
    from moviola.importer import staging

    video = clip(tmp_path / "src" / "a.mp4", 1)
    derived = "video_" + hashlib.sha256(f":{sha(video)}".encode()).hexdigest()[:32]
    # Another import, alive on this host, has put the same video's folder in place and not yet
    # written its row.
    folder = settings.blobs_path / derived
    folder.mkdir(parents=True)
    (folder / "video.mp4").write_bytes(b"the other import's bytes")
    staging.mark(folder, staging.writer())

    report = run(settings, tmp_path / "src")
    (outcome,) = report.outcomes
    assert outcome.status == "duplicate" and outcome.video_id == derived
    assert outcome.reason == f"being imported by another run as {derived}"
    assert (folder / "video.mp4").read_bytes() == b"the other import's bytes"
    assert rows(settings) == []


def test_two_files_claiming_one_exported_id_keep_both_videos_intact(tmp_path, settings, clip):
    claimed = "video_" + "c" * 32
    first = clip(tmp_path / "out" / "videos" / "first.mp4", 1)
    second = clip(tmp_path / "out" / "videos" / "second.mp4", 2)
    entries = [{"id": claimed, "file": f"videos/{p.name}"} for p in (first, second)]
    document = {"format": "moviola.export", "version": 1, "videos": entries}
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(document))

    report = run(settings, tmp_path / "out")
    assert report.counts()["imported"] == 2
    by_name = {Path(row.origin["location"]).name: row for row in rows(settings)}
    assert by_name["first.mp4"].id == claimed and by_name["second.mp4"].id != claimed
    for name, source in (("first.mp4", first), ("second.mp4", second)):
        assert Path(by_name[name].files["video"]["path"]).read_bytes() == source.read_bytes()


def test_metadata_no_library_could_hold_is_left_out_and_noted(tmp_path, settings, clip, sidecar):
    from moviola.config import Settings
    from moviola.importer.export import Filters, export, selected

    clip(tmp_path / "src" / "a.mp4", 1)
    sidecar(
        tmp_path / "src" / "a.json",
        {
            "created_at": 1e300,
            "seconds": "1" * 20,
            "size": "999999x1",
            "prompt": "p" * 500,
            "model": "m" * 300,
        },
    )
    clip(tmp_path / "src" / "b.mp4", 2)
    sidecar(tmp_path / "src" / "b.json", {"created_at": 10**400, "seconds": -3, "size": "1x1"})
    settings = Settings(data_dir=settings.data_dir, max_prompt_chars=100)
    before = time.time()
    report = run(settings, tmp_path / "src")
    assert report.counts()["imported"] == 2, report.outcomes

    by_name = {Path(row.origin["location"]).name: row for row in rows(settings)}
    a, b = by_name["a.mp4"], by_name["b.mp4"]
    assert before <= a.created_at <= time.time() and before <= b.created_at
    assert (a.seconds, a.size, b.seconds, b.size) == ("1", "64x48", "1", "1x1")
    assert a.prompt == "p" * 100 and a.model == "unknown"
    found = a.origin["found"]
    assert found["created_at"].startswith("ignored: sidecar json (not a date")
    assert found["seconds"].startswith("ignored: sidecar json (not a duration")
    assert found["size"] == "ignored: sidecar json (not WIDTHxHEIGHT)"
    assert found["prompt"] == "sidecar json (cut to 100 characters)"
    assert found["model"].startswith("ignored: sidecar json (longer than 200")

    summary = export(selected(settings, Filters()), tmp_path / "out")  # no OverflowError
    assert summary.videos == 2


def test_lineage_never_points_a_video_at_itself_or_closes_a_loop(tmp_path, settings, clip, sidecar):
    clip(tmp_path / "self.mp4", 1)
    sidecar(tmp_path / "self.json", {"id": "gen_s", "remixed_from_video_id": "gen_s"})
    clip(tmp_path / "x.mp4", 2)
    sidecar(tmp_path / "x.json", {"id": "gen_x", "remixed_from_video_id": "gen_y"})
    clip(tmp_path / "y.mp4", 3)
    sidecar(tmp_path / "y.json", {"id": "gen_y", "remixed_from_video_id": "gen_x"})

    report = run(settings, tmp_path)
    assert report.lineage_linked == 1
    refused = dict(report.lineage_refused)
    by_original = {row.origin["original_id"]: row for row in rows(settings)}
    assert "its own parent" in refused[by_original["gen_s"].id]
    assert by_original["gen_s"].remixed_from_video_id is None
    x, y = by_original["gen_x"], by_original["gen_y"]
    assert (x.remixed_from_video_id, y.remixed_from_video_id) == (y.id, None)
    assert "a loop" in refused[y.id]

    again = run(settings, tmp_path)  # refused again, never linked by a later run either
    assert again.lineage_linked == 0 and len(again.lineage_refused) == 2


def test_each_import_is_in_the_audit_log(tmp_path, settings, clip):
    from moviola.store import audit, db

    clip(tmp_path / "src" / "a.mp4", 1)
    clip(tmp_path / "src" / "b.gif", 2)
    run(settings, tmp_path / "src")
    run(settings, tmp_path / "src")  # duplicates: nothing new to record
    engine = db.connect(settings.db_url)
    try:
        entries = audit.query(db.sessions(engine))
    finally:
        engine.dispose()
    imported = {row.id: row for row in rows(settings)}
    assert sorted(e["video_id"] for e in entries if e["action"] == "import") == sorted(imported)
    for entry in entries:
        assert entry["detail"]["sha256"] == imported[entry["video_id"]].content_sha256
        assert entry["detail"]["source"] == "folder"


def test_a_zip_inside_a_zip_is_imported_and_one_too_deep_is_reported(tmp_path, settings, clip):
    def zipped(entries: dict[str, bytes]) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
        return out.getvalue()

    inner = clip(tmp_path / "inner.mp4", 1).read_bytes()
    deepest = zipped({"4.zip": zipped({"lost.mp4": clip(tmp_path / "lost.mp4", 2).read_bytes()})})
    archive = tmp_path / "1.zip"
    archive.write_bytes(zipped({"2.zip": zipped({"inner.mp4": inner, "3.zip": deepest})}))

    report = run(settings, archive)
    report.write(tmp_path / "report.json")
    written = json.loads((tmp_path / "report.json").read_text())
    videos = {v["location"].removeprefix(f"{archive}!/"): v for v in written["videos"]}
    assert videos.keys() == {"2.zip!/inner.mp4", "2.zip!/3.zip!/4.zip"}
    assert videos["2.zip!/inner.mp4"]["status"] == "imported"
    too_deep = videos["2.zip!/3.zip!/4.zip"]
    assert too_deep["status"] == "failed" and "nested over 3 deep" in too_deep["reason"]
    (row,) = rows(settings)
    assert Path(row.files["video"]["path"]).read_bytes() == inner
