"""Exports: the documented manifest, and what an import makes of a damaged or newer one."""

from __future__ import annotations

import hashlib
import json
import zipfile

from moviola.importer.export import Filters, export, selected
from moviola.importer.library import Library
from moviola.importer.run import run_import
from moviola.importer.sources import walk


def run(settings, *paths):
    with Library(settings) as library, walk(list(paths)) as found:
        return run_import(library, found.candidates, problems=found.problems)


def test_an_export_holds_each_file_and_a_manifest_describing_it(tmp_path, settings, clip):
    from moviola.config import Settings

    clip(tmp_path / "src" / "a.mp4", 1)
    clip(tmp_path / "src" / "b.gif", 2)
    run(settings, tmp_path / "src")
    summary = export(selected(settings, Filters()), tmp_path / "out.zip")
    assert summary.videos == 2

    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        document = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
        assert document["format"] == "moviola.export" and document["version"] == 1
        assert document["count"] == 2
        for entry in document["videos"]:
            previews = {entry["thumbnail"]["file"], entry["spritesheet"]["file"]}
            assert {entry["file"], *previews} <= names
            suffix = ".gif" if entry["mime"] == "image/gif" else ".mp4"
            assert entry["file"] == f"videos/{entry['id']}{suffix}"
            assert entry["kind"] == "import" and entry["origin"]["source"] == "folder"
            assert hashlib.sha256(archive.read(entry["file"])).hexdigest() == entry["sha256"]

    other = Settings(data_dir=tmp_path / "other")
    assert selected(other, Filters()) == []  # no library there: nothing, and nothing created
    assert not other.data_dir.exists()


def test_a_video_that_does_not_match_the_manifest_is_refused(tmp_path, settings, clip):
    from moviola.config import Settings

    clip(tmp_path / "src" / "a.mp4", 1)
    clip(tmp_path / "src" / "b.mp4", 2)
    run(settings, tmp_path / "src")
    export(selected(settings, Filters()), tmp_path / "out")
    document = json.loads((tmp_path / "out" / "manifest.json").read_text())
    damaged = tmp_path / "out" / document["videos"][0]["file"]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")

    report = run(Settings(data_dir=tmp_path / "again"), tmp_path / "out")
    statuses = {o.location.rsplit("/", 1)[-1]: (o.status, o.reason) for o in report.outcomes}
    assert statuses[damaged.name] == (
        "failed",
        "its bytes do not match the SHA-256 in the export's manifest",
    )
    assert report.counts()["imported"] == 1


def test_a_manifest_from_a_newer_moviola_is_reported(tmp_path, settings, clip):
    clip(tmp_path / "out" / "videos" / "x.mp4", 1)
    newer = {"format": "moviola.export", "version": 99, "videos": [{"file": "videos/x.mp4"}]}
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(newer))
    report = run(settings, tmp_path / "out")
    reasons = {o.location: o.reason for o in report.outcomes if o.status == "failed"}
    assert "newer than this Moviola reads" in reasons[str(tmp_path / "out" / "manifest.json")]
    assert report.counts()["imported"] == 1  # the video itself still comes in


def test_ratings_travel_with_an_export(tmp_path, settings, clip):
    from sqlalchemy import select

    from moviola.assistant.projects import Projects
    from moviola.config import Settings
    from moviola.store import db
    from moviola.store.models import Video

    clip(tmp_path / "src" / "liked.mp4", 1)
    clip(tmp_path / "src" / "disliked.mp4", 2)
    clip(tmp_path / "src" / "unrated.mp4", 3)
    run(settings, tmp_path / "src")
    sessions = db.sessions(db.connect(settings.db_url))

    def by_name(sessions) -> dict[str, Video]:
        with sessions() as session:
            rows = session.execute(select(Video)).scalars().all()
        return {row.origin["location"].rsplit("/", 1)[-1]: row for row in rows}

    made = by_name(sessions)
    Projects(sessions).rate_video(None, made["liked.mp4"].id, 1, "the light")
    Projects(sessions).rate_video(None, made["disliked.mp4"].id, -1, None)
    made = by_name(sessions)

    export(selected(settings, Filters()), tmp_path / "out")
    document = json.loads((tmp_path / "out" / "manifest.json").read_text())
    shown = {entry["id"]: (entry["rating"], entry["rating_note"]) for entry in document["videos"]}
    assert shown[made["liked.mp4"].id] == ("up", "the light")
    assert shown[made["unrated.mp4"].id] == (None, None)

    again = Settings(data_dir=tmp_path / "again")
    assert run(again, tmp_path / "out").counts()["imported"] == 3
    with db.sessions(db.connect(again.db_url))() as session:
        kept = {row.id: row for row in session.execute(select(Video)).scalars()}
    for name, rating, note in (
        ("liked.mp4", 1, "the light"),
        ("disliked.mp4", -1, None),
        ("unrated.mp4", None, None),
    ):
        row = kept[made[name].id]
        assert (row.rating, row.rating_note, row.rated_at) == (rating, note, made[name].rated_at)


def test_favourites_and_the_prompt_history_travel_with_an_export(tmp_path, settings, clip):
    from sqlalchemy import select, update

    from moviola.config import Settings
    from moviola.store import db
    from moviola.store.models import Video

    clip(tmp_path / "src" / "starred.mp4", 1)
    clip(tmp_path / "src" / "plain.mp4", 2)
    run(settings, tmp_path / "src")
    with db.sessions(db.connect(settings.db_url)).begin() as session:
        rows = {r.origin["location"].rsplit("/", 1)[-1]: r for r in session.scalars(select(Video))}
        starred = rows["starred.mp4"].id
        session.execute(
            update(Video)
            .where(Video.id == starred)
            .values(
                favourited_at=1795339100.0,
                original_prompt="a boat",
                prompt_variants=["a red paper boat on a pond", "a boat at dusk"],
            )
        )

    export(selected(settings, Filters()), tmp_path / "out")
    again = Settings(data_dir=tmp_path / "again")
    assert run(again, tmp_path / "out").counts()["imported"] == 2
    with db.sessions(db.connect(again.db_url))() as session:
        kept = {row.id: row for row in session.scalars(select(Video))}
    assert kept[starred].favourited_at == 1795339100.0
    assert kept[starred].original_prompt == "a boat"
    assert kept[starred].prompt_variants == ["a red paper boat on a pond", "a boat at dusk"]
    plain = rows["plain.mp4"].id
    assert (kept[plain].favourited_at, kept[plain].original_prompt) == (None, None)
