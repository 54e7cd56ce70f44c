"""A local HTTP file server on 127.0.0.1 for download tests: Range support, request log, faults.

Used as a context manager (or through the ``http_server`` fixtures of the download tests); it
serves one folder, answers Range requests with 206 (or ignores them when asked), can cut a
response short to simulate a dropped connection, and shuts down when the block ends.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class LoggedRequest:
    path: str
    range: str | None


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server
    timeout = 5  # a stuck client cannot keep a handler thread alive for long

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean

    def do_GET(self) -> None:
        srv = self.server
        name = unquote(urlsplit(self.path).path).lstrip("/")
        range_header = self.headers.get("Range")
        srv.requests.append(LoggedRequest(path=name, range=range_header))
        file = Path(self.translate_path(self.path))
        if not file.is_file():
            self.send_error(404, "Not Found")
            return
        data = file.read_bytes()
        size = len(data)
        start, end, status = 0, size - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", (range_header or "").strip())
        if match and not srv.ignore_range:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start : end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        cut = srv.cut_after.pop(name, None)
        if cut is not None:
            # Promise the whole body, send part of it, hang up: a dropped connection.
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    requests: list[LoggedRequest]
    ignore_range: bool
    cut_after: dict[str, int]


class LocalHTTPServer:
    """Serve ``root`` on ``http://127.0.0.1:<free port>/`` while the context is open.

    Attributes:
        root: the folder served.
        requests: every GET received (path relative to the root, Range header).
        ignore_range: answer 200 with the whole file even when a Range is asked for.
        cut_after: ``{name: n}`` — the next response for ``name`` stops after ``n`` body bytes.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_Handler, directory=str(self.root))
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.requests = []
        self._server.ignore_range = False
        self._server.cut_after = {}
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    @property
    def requests(self) -> list[LoggedRequest]:
        return self._server.requests

    @property
    def ignore_range(self) -> bool:
        return self._server.ignore_range

    @ignore_range.setter
    def ignore_range(self, value: bool) -> None:
        self._server.ignore_range = value

    @property
    def cut_after(self) -> dict[str, int]:
        return self._server.cut_after

    def __enter__(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
