"""`moviola models pull ID` runs the Studio's install, with the same progress: bytes done and in
all, rate and time left."""

import os
import re
import subprocess
import sys
from pathlib import Path

MOVIOLA = str(Path(sys.executable).parent / "moviola")
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MOVING = re.compile(r"KB of [\d.]+ KB · [\d.]+ KB/s · about \d+ s left")


def pull(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MOVIOLA, "models", "pull", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MOVIOLA_DATA_DIR": str(data_dir), "COLUMNS": "120", **env},
    )


def test_pull_shows_the_installs_progress_and_installs_where_the_server_looks(tmp_path):
    # A terminal, as a person runs it: the bar is redrawn as the bytes arrive.
    done = pull(
        tmp_path,
        "tiny",
        MOVIOLA_INSTALL_MAX_BYTES_PER_S="100000",
        TTY_INTERACTIVE="1",
        TTY_COMPATIBLE="1",
    )
    assert done.returncode == 0, done.stderr
    shown = ESCAPES.sub("", done.stdout)
    frames = {line.strip() for line in shown.replace("\r", "\n").split("\n")}
    moving = [frame for frame in frames if MOVING.search(frame)]
    assert len(moving) >= 3, frames
    assert any("installed: " in f for f in frames)
    folder = tmp_path / "models" / "tiny"
    assert f"tiny is ready: {folder}" in shown
    assert (folder / "model_index.json").is_file()
    assert not (tmp_path / "models" / ".installs" / "tiny" / "partial").exists()

    again = pull(tmp_path, "tiny")
    assert again.returncode == 0 and f"tiny is installed already: {folder}" in again.stdout
