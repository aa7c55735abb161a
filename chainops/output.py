"""Lines to the terminal for the front ends and honcho's printer: a reader that went
away (`| head`, a closed terminal) silences the stream and never stops the caller.
"""

from __future__ import annotations

import os
from typing import TextIO


def write_line(line: str, stream: TextIO) -> None:
    """Print a line; a closed pipe or terminal stops the printing only."""
    try:
        print(line, file=stream, flush=True)
    except OSError:  # EPIPE from `| head`, EIO from a closed terminal
        silence(stream)


def silence(stream: TextIO) -> None:
    """Send a stream's later output, and its flush at exit, to the null device."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (captured in tests): nothing to redirect
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class Guarded:
    """A text stream for code that writes without catching (honcho's Printer)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:
            silence(self._stream)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            silence(self._stream)

    def isatty(self) -> bool:
        return self._stream.isatty()
