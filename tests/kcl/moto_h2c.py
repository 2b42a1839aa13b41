"""moto's server, in this process, speaking HTTP/1.1 and h2c on one port.

The KCL daemon's AWS SDK talks to Kinesis over HTTP/2 with prior knowledge
(no upgrade) on ``http://`` endpoints; moto's own server (werkzeug) speaks
only HTTP/1.1, and every Kinesis call then fails with "First received frame
was not SETTINGS" (see ``shared/KCL.md``). Hypercorn serves a WSGI app over
both protocols on one plain socket: it recognises the HTTP/2 connection
preface and switches protocol. Running it in a thread of the test process
keeps moto's backends in memory here, so tests can inspect them directly.

Requests are served one at a time: Hypercorn runs WSGI calls on a thread
pool, and moto's backends are not safe under concurrent requests (a
cancelled ``TransactWriteItems`` restores a copy of the table taken when it
started, erasing writes made meanwhile; see ``tests/aws/moto_backends.py``).
DynamoDB applies each request atomically, and so does this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)

#: How long start() waits for the server thread's event loop.
START_TIMEOUT_SECONDS = 10.0


class MotoH2CServer:
    """moto's WSGI app behind Hypercorn, on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` for boto3 and the KCL properties."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Bind a loopback port and serve on it from a daemon thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        # Listening before the loop starts: early clients wait in the backlog.
        sock.listen(128)
        self.port = sock.getsockname()[1]
        config = _config(sock.detach())
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="moto-h2c", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("moto h2c server did not start")
        if self._error is not None:
            raise RuntimeError("moto h2c server failed") from self._error

    def stop(self) -> None:
        """Ask Hypercorn to shut down and wait for the thread."""
        if self._loop is None or self._stop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)

    def _run(self, config: Config) -> None:
        try:
            asyncio.run(self._serve(config))
        except BaseException as error:  # reported to start() or lost at exit
            self._error = error
            self._ready.set()

    async def _serve(self, config: Config) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        app = _Serialized(DomainDispatcherApplication(create_backend_app))
        await serve(app, config, shutdown_trigger=self._stop.wait, mode="wsgi")


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Serialized:
    """A WSGI app that runs one request at a time, body included."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        with self._lock:
            body = self._app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def _config(fd: int) -> Config:
    config = Config()
    config.bind = [f"fd://{fd}"]
    config.accesslog = None
    config.errorlog = None
    # Kinesis GetRecords responses and DynamoDB scans stay far below this.
    config.wsgi_max_body_size = 64 * 1024 * 1024
    config.keep_alive_timeout = 75
    return config


@contextlib.contextmanager
def moto_h2c_server() -> Iterator[MotoH2CServer]:
    """Run a server for the duration of a ``with`` block."""
    server = MotoH2CServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
