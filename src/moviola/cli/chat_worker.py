"""`moviola chat-worker` (hidden): the assistant's chat model behind an OpenAI-compatible
endpoint on loopback, started and watched by `moviola serve`.

It loads the model, binds 127.0.0.1 (port 0: a free one), then writes its base URL
(`http://127.0.0.1:PORT/v1`) to the ready file, atomically, so that the server never reads half
of it nor an address that does not answer yet.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import typer

from moviola.cli.failures import one_line_errors

log = logging.getLogger("moviola.chat")

PARENT_POLL_S = 0.5


def chat_worker(
    model: str = typer.Option(..., "--model", help="The chat model's catalogue id."),
    port: int = typer.Option(0, "--port", help="The loopback port (0: a free one)."),
    ready_file: Path = typer.Option(
        ..., "--ready-file", help="Where to write the base URL once the model is loaded."
    ),
    models_dir: Path = typer.Option(None, "--models-dir", help="Default: the setting."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:1 …"),
    parent_pid: int = typer.Option(
        None, "--parent-pid", help="Exit when this process is no longer the parent."
    ),
) -> None:
    """Serve one chat model for the server that started it."""
    with one_line_errors():
        import uvicorn

        from moviola import logs
        from moviola.chat.process import TOKEN_ENV
        from moviola.chat.worker_app import create_worker_app
        from moviola.config import get_settings
        from moviola.engine.chat import ChatEngine

        logs.configure()
        if parent_pid is not None:
            _exit_with_parent(parent_pid)
        settings = get_settings()
        engine = ChatEngine(
            model,
            models_dir if models_dir is not None else settings.models_path,
            device or settings.assistant_device,
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        app = create_worker_app(engine, token=os.environ.get(TOKEN_ENV))
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5)
        )
        threading.Thread(
            target=_announce_when_started, args=(server, url, ready_file), daemon=True
        ).start()
        server.run(sockets=[sock])


def _announce_when_started(server: object, url: str, ready_file: Path) -> None:
    while not getattr(server, "started", False):
        if getattr(server, "should_exit", False):
            return
        time.sleep(0.02)
    partial = ready_file.with_name(ready_file.name + ".partial")
    partial.write_text(url + "\n")
    partial.replace(ready_file)
    log.info("chat worker listening at %s", url)


def _exit_with_parent(parent_pid: int) -> None:
    """Exit when the server goes, even by `kill -9`: a chat worker has nothing to hand back,
    and its memory is wanted by the next server's. (An orphan is adopted by another process,
    so its parent id changes.)"""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        log.warning(
            "the server that started this chat worker (pid %d) is gone: exiting", parent_pid
        )
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
