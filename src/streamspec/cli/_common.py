"""What every ``streamspec`` command shares: one-line failures, output, progress, file reads."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, NoReturn

__all__ = [
    "PROG",
    "READ_SIZE",
    "Failure",
    "Output",
    "Progress",
    "error",
    "fail",
    "file_reads",
    "is_url",
    "one_line",
    "open_file",
    "read_all",
]

READ_SIZE = 1 << 16
PROG = "streamspec"


class Failure(Exception):
    """A failure reported as one line on stderr with exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def fail(message: str, code: int = 1) -> NoReturn:
    raise Failure(message, code)


# -- output -------------------------------------------------------------------------------------


class Output:
    """Standard output as UTF-8 bytes, whatever the locale says.

    ``open_line`` is True when the last thing written did not end a line.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.binary: IO[bytes] | None = getattr(stream, "buffer", None)
        self.open_line = False

    def write(self, text: str) -> None:
        if text:
            self.write_bytes(text.encode("utf-8", "surrogatepass"))

    def write_bytes(self, data: bytes) -> None:
        if not data:
            return
        if self.binary is not None:
            self.binary.write(data)
        else:
            self.stream.write(data.decode("utf-8", "replace"))
        self.open_line = not data.endswith(b"\n")

    def flush(self) -> None:
        if self.binary is not None:
            self.binary.flush()
        self.stream.flush()


class Progress:
    """A status line on stderr while a person waits (only when stderr is a terminal).

    ``show(text)`` sets the line; a background thread redraws it with the
    seconds elapsed; ``clear()`` erases it before anything else is printed.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.text = ""
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        if self.thread is None:
            self.started = time.monotonic()
        with self.lock:
            self.text = text
            self._draw()
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._run, name="streamspec-progress", daemon=True
            )
            self.thread.start()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.started
        sys.stderr.write(f"\r\x1b[K{self.text}... {elapsed:.1f}s")
        sys.stderr.flush()

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            with self.lock:
                if self.text:
                    self._draw()

    def clear(self) -> None:
        if not self.enabled:
            return
        with self.lock:
            if self.text:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
                self.text = ""
        self.stop.set()


# -- sources ------------------------------------------------------------------------------------


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def open_file(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        fail(f"no such file: {path}", 2)
    except IsADirectoryError:
        fail(f"is a directory: {path}", 2)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", 2)


def _read_failed(path: str, exc: OSError) -> NoReturn:
    name = "standard input" if path == "-" else path
    fail(f"cannot read {name}: {exc.strerror or exc}", 2)


def file_reads(path: str) -> Iterator[bytes]:
    """The bytes of a file (``-``: standard input) as they can be read, up to 64 KiB at a time.

    A read that fails (a directory given as standard input, an I/O error)
    raises :class:`Failure` with one line naming the file and the reason.
    """
    if path == "-":
        stdin = sys.stdin.buffer
        read = getattr(stdin, "read1", stdin.read)
        try:
            while data := read(READ_SIZE):
                yield data
        except OSError as exc:
            _read_failed(path, exc)
        return
    with open_file(path) as file:
        try:
            while data := file.read(READ_SIZE):
                yield data
        except OSError as exc:
            _read_failed(path, exc)


def read_all(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open_file(path) as file:
            return file.read()
    except OSError as exc:
        _read_failed(path, exc)


def error(message: str) -> None:
    """Print ``streamspec: <message>`` as one line on stderr (never raises)."""
    try:
        sys.stderr.write(f"{PROG}: {one_line(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
