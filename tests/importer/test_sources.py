"""Finding videos and their metadata in folders and ZIP archives, refusing hostile archives."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from moviola.importer.metadata import parse_time
from moviola.importer.sources import walk


def by_name(found):
    return {c.name: c for c in found.candidates}


def test_a_folder_is_walked_recursively_with_sidecars_of_both_kinds(tmp_path, clip, sidecar):
    clip(tmp_path / "top.mp4", 1)
    clip(tmp_path / "a" / "b" / "deep.mov", 2)
    clip(tmp_path / "a" / "anim.gif", 3)
    made = "2025-10-10T03:06:10Z"
    sidecar(tmp_path / "top.json", {"prompt": "a fox at dusk", "created_at": made})
    sidecar(tmp_path / "a" / "b" / "deep.txt", "a heron in the reeds\n")
    sidecar(tmp_path / "a" / "notes.md", "not a video")

    with walk([tmp_path]) as found:
        videos = by_name(found)
        assert set(videos) == {"top.mp4", "deep.mov", "anim.gif"}
        top = videos["top.mp4"].metadata
        assert top.get("prompt") == "a fox at dusk"
        assert top.get("created_at") == parse_time("2025-10-10T03:06:10+00:00")
        assert top.found == {"prompt": "sidecar json", "created_at": "sidecar json"}
        deep = videos["deep.mov"].metadata
        assert deep.get("prompt") == "a heron in the reeds"
        assert deep.found == {"prompt": "sidecar txt"}
        assert videos["deep.mov"].local_path == tmp_path / "a" / "b" / "deep.mov"


def test_a_json_sidecar_wins_over_a_txt_one_and_a_manifest(tmp_path, clip, sidecar):
    clip(tmp_path / "v.mp4", 1)
    sidecar(tmp_path / "v.json", {"prompt": "from the json", "id": "gen_1"})
    sidecar(tmp_path / "v.txt", "from the txt")
    listed = {"file": "v.mp4", "prompt": "from the manifest", "model": "sora-2"}
    sidecar(tmp_path / "index.json", [listed])

    with walk([tmp_path]) as found:
        meta = found.candidates[0].metadata
    assert meta.get("prompt") == "from the json"
    assert meta.get("model") == "sora-2"  # what the json lacked, the manifest gave
    assert meta.found["model"] == "manifest"


def test_a_manifest_lists_many_videos_by_path_name_or_id(tmp_path, clip):
    for i in range(6):
        clip(tmp_path / "videos" / f"gen_{i}.mp4", i)
    entries = [
        {"id": f"gen_{i}", "prompt": f"prompt {i}", "created_at": 1_700_000_000 + i}
        for i in range(3)
    ] + [{"path": f"videos/gen_{i}.mp4", "prompt": f"prompt {i}"} for i in range(3, 6)]
    (tmp_path / "index.json").write_text(json.dumps({"videos": entries}))
    (tmp_path / "prompts.csv").write_text("filename,prompt,model\ngen_5.mp4,ignored,sora-2-pro\n")

    with walk([tmp_path]) as found:
        videos = by_name(found)
    assert {name: c.metadata.get("prompt") for name, c in videos.items()} == {
        f"gen_{i}.mp4": f"prompt {i}" for i in range(6)
    }
    assert videos["gen_1.mp4"].metadata.get("created_at") == 1_700_000_001
    assert videos["gen_5.mp4"].metadata.get("model") == "sora-2-pro"


def test_a_zip_with_nested_folders_is_read_in_place(tmp_path, clip, sidecar):
    src = tmp_path / "src"
    clip(src / "one.mp4", 1)
    clip(src / "nested" / "deeper" / "two.webm", 2)
    sidecar(src / "nested" / "deeper" / "two.json", {"prompt": "two", "id": "gen_two"})
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(src).as_posix())

    with walk([archive]) as found:
        videos = by_name(found)
        assert set(videos) == {"one.mp4", "two.webm"}
        two = videos["two.webm"]
        assert two.source == "zip" and two.local_path is None
        assert two.location == f"{archive}!/nested/deeper/two.webm"
        assert two.metadata.get("original_id") == "gen_two"
        with two.open() as stream:  # streamed from the archive, byte for byte
            assert stream.read() == (src / "nested" / "deeper" / "two.webm").read_bytes()
    assert not (tmp_path / "nested").exists()


def test_zip_slip_entries_and_zip_bombs_are_refused_and_reported(tmp_path, clip):
    good = clip(tmp_path / "good.mp4", 1)
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(good, "fine/good.mp4")
        out.writestr("../../escape.mp4", good.read_bytes())
        out.writestr("/etc/cron.d/evil", b"* * * * * root true")
        out.writestr("bomb.mp4", b"\0" * (24 << 20))  # 24 MB of zeros: ~24 KB compressed

    with walk([archive]) as found:
        videos = by_name(found)
        assert videos["good.mp4"].refused is None
        assert "zip-slip" in videos["escape.mp4"].refused
        assert "zip bomb" in videos["bomb.mp4"].refused
        problems = found.problems
    assert len(problems) == 1
    location, reason = problems[0]
    assert location.startswith(f"{archive}!") and location.endswith("/etc/cron.d/evil")
    assert "'/etc/cron.d/evil'" in reason and "zip-slip" in reason


def test_missing_paths_and_other_files_are_reported(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with walk([tmp_path / "nowhere", tmp_path / "notes.txt"]) as found:
        assert found.candidates == []
        assert dict(found.problems) == {
            str(tmp_path / "nowhere"): "no such file or folder",
            str(tmp_path / "notes.txt"): "not a video, a folder or a ZIP archive",
        }


def test_unreadable_and_oversized_metadata_is_reported_and_the_walk_goes_on(tmp_path, clip):
    from moviola.importer.metadata import MAX_SIDECAR_BYTES

    clip(tmp_path / "deep.mp4", 1)
    clip(tmp_path / "big.mp4", 2)
    bomb = "[" * 200_000 + "]" * 200_000  # a stack's worth of nesting in 400 KB
    (tmp_path / "deep.json").write_text(bomb)
    (tmp_path / "index.json").write_text(bomb)
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "big.json").write_text(json.dumps({"prompt": "x" * MAX_SIDECAR_BYTES}))

    with walk([tmp_path]) as found:
        assert sorted(by_name(found)) == ["big.mp4", "deep.mp4"]
        problems = {Path(location).name: reason for location, reason in found.problems}
    assert problems["deep.json"] == "not read: its JSON is nested too deeply"
    assert problems["index.json"] == "not read: its JSON is nested too deeply"
    assert problems["broken.json"].startswith("not valid JSON")
    assert problems["big.json"] == "not read: over 1 MiB"


def test_links_out_of_the_folder_are_reported_and_never_read(tmp_path, clip):
    outside = clip(tmp_path / "private" / "secret.mp4", 1)
    (tmp_path / "private" / "keys.json").write_text('{"prompt": "a secret"}')
    src = tmp_path / "src"
    clip(src / "real.mp4", 2)
    (src / "escape.mp4").symlink_to(outside)
    (src / "real.json").symlink_to(tmp_path / "private" / "keys.json")
    (src / "alias.mp4").symlink_to(src / "real.mp4")  # inside: followed
    (src / "elsewhere").symlink_to(tmp_path / "private", target_is_directory=True)

    with walk([src]) as found:
        videos = by_name(found)
        problems = dict(found.problems)
    assert set(videos) == {"real.mp4", "alias.mp4"}
    assert videos["alias.mp4"].local_path == (src / "real.mp4").resolve()
    assert videos["real.mp4"].metadata.get("prompt") is None
    outside_links = {str(src / n) for n in ("escape.mp4", "real.json", "elsewhere")}
    assert set(problems) == outside_links
    assert all("outside the folder" in reason for reason in problems.values())


def test_one_named_file_reads_its_own_sidecars_not_every_manifest_beside_it(tmp_path, clip):
    video = clip(tmp_path / "one.mp4", 1)
    (tmp_path / "one.txt").write_text("its prompt")
    (tmp_path / "huge.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "other.csv").write_text("filename,prompt\none.mp4,from a stranger's csv\n")

    with walk([video]) as found:
        (candidate,) = found.candidates
        assert found.problems == []
    assert candidate.metadata.get("prompt") == "its prompt"


def test_an_export_manifest_describes_only_the_files_it_names(tmp_path, clip):
    clip(tmp_path / "out" / "videos" / "x.mp4", 1)
    clip(tmp_path / "out" / "other" / "x.mp4", 2)  # the same name, elsewhere
    entry = {"id": "video_" + "a" * 32, "file": "videos/x.mp4", "prompt": "the real x"}
    document = {"format": "moviola.export", "version": 1, "videos": [entry]}
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(document))

    with walk([tmp_path / "out"]) as found:
        videos = {c.location: c for c in found.candidates}
    named = videos[str(tmp_path / "out" / "videos" / "x.mp4")]
    other = videos[str(tmp_path / "out" / "other" / "x.mp4")]
    assert named.source == "export" and named.metadata.get("prompt") == "the real x"
    assert other.source == "folder" and other.metadata.get("prompt") is None


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_zips_inside_a_zip_are_walked_stored_or_compressed(tmp_path, clip):
    data = {n: clip(tmp_path / f"{n}.mp4", i).read_bytes() for i, n in enumerate("abcde")}
    stored = zip_bytes(
        {
            "b.mp4": data["b"],
            "b.json": b'{"prompt": "bee"}',
            "e.zip": zip_bytes({"e.mp4": data["e"]}, zipfile.ZIP_STORED),
        },
        zipfile.ZIP_STORED,
    )
    deflated = zip_bytes({"deep/c.mp4": data["c"], "deep/d.zip": zip_bytes({"d.mp4": data["d"]})})
    archive = tmp_path / "outer.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("a.mp4", data["a"])
        out.writestr("stored.zip", stored, zipfile.ZIP_STORED)
        out.writestr("more/deflated.zip", deflated)

    with walk([archive]) as found:
        assert found.problems == []
        videos = {c.location.removeprefix(f"{archive}!/"): c for c in found.candidates}
        assert set(videos) == {
            "a.mp4",
            "stored.zip!/b.mp4",
            "stored.zip!/e.zip!/e.mp4",
            "more/deflated.zip!/deep/c.mp4",
            "more/deflated.zip!/deep/d.zip!/d.mp4",
        }
        assert videos["stored.zip!/b.mp4"].metadata.get("prompt") == "bee"
        for location, candidate in videos.items():
            assert candidate.source == "zip" and candidate.local_path is None
            with candidate.open() as stream:  # streamed out, byte for byte
                assert stream.read() == data[candidate.name[0]], location
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # nothing extracted beside it


def test_zips_too_deep_damaged_or_hostile_inside_a_zip_are_reported(tmp_path, clip):
    video = clip(tmp_path / "v.mp4", 1).read_bytes()
    nested = zip_bytes({"4.zip": zip_bytes({"too-deep.mp4": video}), "fine.mp4": video})
    nested = zip_bytes({"3.zip": nested})
    hostile = zip_bytes({"../../escape.mp4": video, "bomb.zip": b"\0" * (24 << 20)})
    archive = tmp_path / "1.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("2.zip", nested)
        out.writestr("hostile.zip", hostile)
        out.writestr("broken.zip", b"PK\3\4 not really")

    with walk([archive]) as found:
        videos = {c.location.removeprefix(f"{archive}!/"): c for c in found.candidates}
        problems = {where.removeprefix(f"{archive}!/"): why for where, why in found.problems}
    assert set(videos) == {"2.zip!/3.zip!/fine.mp4", "hostile.zip!/../../escape.mp4"}
    assert "zip-slip" in videos["hostile.zip!/../../escape.mp4"].refused
    assert problems.keys() == {"2.zip!/3.zip!/4.zip", "hostile.zip!/bomb.zip", "broken.zip"}
    assert problems["2.zip!/3.zip!/4.zip"] == "not imported: ZIP archives nested over 3 deep"
    assert "zip bomb" in problems["hostile.zip!/bomb.zip"]
    assert problems["broken.zip"].startswith("not a readable ZIP archive")


def test_videos_are_found_by_their_bytes_whatever_their_name(tmp_path, clip):
    import av

    clip(tmp_path / "download", 1, container="mp4")  # no suffix at all
    clip(tmp_path / "clip.bin", 2, container="webm")
    with av.open(str(tmp_path / "old.avi"), "w") as out:  # a container Moviola reads, too
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(4):
            frame = av.VideoFrame(64, 48, "yuv420p")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    (tmp_path / "notes").write_text("not a video")

    with walk([tmp_path]) as found:
        assert sorted(by_name(found)) == ["clip.bin", "download", "old.avi"]
    with walk([tmp_path / "download"]) as found:
        assert [c.name for c in found.candidates] == ["download"] and found.problems == []


def test_the_container_is_what_the_one_sniffer_says(tmp_path):
    import av

    from moviola.importer.container import read_container
    from moviola.media.sniff import sniff_file

    path = tmp_path / "vp9.mkv"  # Matroska holding VP9: a WebM codec, not a WebM file
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libvpx-vp9", rate=8, options={"deadline": "realtime"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(2):
            frame = av.VideoFrame(64, 48, "yuv420p")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    container = read_container(path)
    assert (container.kind, container.mime, container.suffix) == (
        "mkv",
        sniff_file(path).media_type,
        ".mkv",
    )
