"""Content credentials on what the worker makes from a source that is not an MP4: an uploaded
WebM or GIF, and an imported GIF remixed. The source stays a verifiable ingredient."""

from pathlib import Path

import av
import numpy as np
import pytest

from moviola.importer.library import Library
from moviola.importer.run import run_import
from moviola.importer.sources import walk
from moviola.jobs.service import Caller, Upload
from moviola.media.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    read_credentials,
)
from moviola.render.stamp import Stamp
from moviola.store.models import Video

pytestmark = pytest.mark.timeout(180)

ME = Caller()


def write_video(path: Path, container: str) -> Path:
    """Eight 160×96 frames as a camera (WebM) or a meme site (GIF) would make them."""
    codec, pix_fmt = {"webm": ("libvpx", "yuv420p"), "gif": ("gif", "rgb8")}[container]
    rng = np.random.default_rng(3)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = 160, 96, pix_fmt
        for _ in range(8):
            frame = rng.integers(0, 255, (96, 160, 3), np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def finished(store, job_id: str) -> Video:
    _, sessions, _, _ = store
    with sessions() as session:
        row = session.get(Video, job_id)
    assert (row.status, row.error_message) == ("completed", None)
    assert row.attempts == 1  # the first render: nothing failed and was retried
    return row


@pytest.mark.parametrize("container", ["webm", "gif"])
def test_an_edit_of_an_uploaded_video_in_any_container_is_signed_with_it(
    container, store, worker, tmp_path
):
    _, _, blobs, service = store
    source = write_video(tmp_path / f"phone.{container}", container)
    job = service.edit(
        ME, prompt="the same street, at night", model="tiny", upload=Upload(source.read_bytes())
    )
    # Kept as what it is, under its own suffix.
    assert Path(job.input_path) == blobs.input_path(job.id, f".{container}")
    assert Path(job.input_path).read_bytes() == source.read_bytes()
    assert worker.run_one()
    row = finished(store, job.id)
    credentials = row.credentials
    assert credentials == read_credentials(Path(row.files["video"]["path"]))
    assert credentials["errors"] == []
    [ingredient] = credentials["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    # Real footage edited by a model: a composite, not wholly generated.
    assert [(a["action"], a["digital_source_type"]) for a in credentials["actions"]] == [
        ("c2pa.created", TRAINED_ALGORITHMIC_MEDIA),
        ("c2pa.edited", COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA),
    ]


def test_a_remix_of_an_imported_gif_is_signed_with_it(store, worker, tmp_path):
    settings, _, _, service = store
    folder = tmp_path / "old"
    folder.mkdir()
    write_video(folder / "loop.gif", "gif")
    (folder / "loop.json").write_text('{"prompt": "a loop", "model": "tiny"}')  # its sidecar
    with Library(settings) as library, walk([folder]) as found:
        run_import(library, found.candidates, problems=found.problems)
    [imported] = service.list(ME)[0]
    assert imported.files["video"]["mime"] == "image/gif"
    remix = service.remix(ME, imported.id, prompt="the same loop, in colour")
    assert worker.run_one()
    credentials = finished(store, remix.id).credentials
    assert credentials["errors"] == []
    assert len(credentials["ingredients"]) == 1
    assert credentials["actions"][1]["digital_source_type"] == (
        COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    )


def test_a_stamp_names_each_file_after_its_video(tmp_path):
    stamp = Stamp().from_source(tmp_path / "src.gif", "video_src.gif", media_type="image/gif")
    named = stamp.for_video("video_abc")
    assert (named.edited_from, named.source_title, named.source_media_type) == (
        tmp_path / "src.gif",
        "video_src.gif",
        "image/gif",
    )
    assert named.video_id == "video_abc" and stamp.video_id is None
