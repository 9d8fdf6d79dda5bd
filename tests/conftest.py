"""Every test runs offline, against an empty Hugging Face cache and its own data dir."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="moviola-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_HOME / "hf")
os.environ["MOVIOLA_DATA_DIR"] = str(_HOME / "data")
os.environ.pop("MOVIOLA_CONFIG", None)


@pytest.fixture(scope="session")
def engine():
    """One engine for the session: tiny pipelines load once and stay cached, as in a worker."""
    from moviola.engine import Engine

    return Engine(models_dir=_HOME / "data" / "models", max_loaded=4)
