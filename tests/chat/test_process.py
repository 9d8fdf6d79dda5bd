"""The chat worker never outlives the server that started it, even one killed by SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

SERVER = """
import time
from moviola.chat.process import ChatProcess
from moviola.config import Settings
process = ChatProcess(Settings(assistant_model="tiny-chat"))
process.start()
while process.url is None:
    time.sleep(0.05)
print(process.pid, process.url, process.token, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_chat_worker_exits_when_its_server_is_killed(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        env={**os.environ, "MOVIOLA_DATA_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pid, url, token = server.stdout.readline().split()
        models = httpx.get(f"{url}/models", headers={"authorization": f"Bearer {token}"})
        assert models.json()["data"][0]["id"] == "tiny-chat"
        # Only its own server may use it: the port is open to every local user.
        assert httpx.get(f"{url}/models").status_code == 401
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 15
    while running(int(pid)):
        assert time.monotonic() < deadline, "the chat worker outlived its server"
        time.sleep(0.1)
