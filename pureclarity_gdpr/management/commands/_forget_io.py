"""Input and output of ``pureclarity_forget``: identifiers in, plain lines out.

Identifiers are read as UTF-8 whatever the locale; output shows them masked and
escapes what the stream's encoding cannot carry, so the command never crashes on
a report after requests were sent.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any

from django.core.management.base import CommandError, OutputWrapper

from pureclarity_gdpr.exceptions import InvalidIdentifier
from pureclarity_gdpr.identifiers import clean
from pureclarity_gdpr.models import ForgetRequest

STDIN = "-"
ELLIPSIS = "..."


class Escaping:
    """A text stream that writes what its encoding cannot carry as backslash escapes.

    Masked identifiers keep their first characters, which may be non-ASCII; on a
    terminal or pipe set to ASCII, writing them must not crash the command after
    requests were sent.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        encoding = getattr(self._stream, "encoding", None)
        if encoding:
            text = text.encode(encoding, "backslashreplace").decode(encoding)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class Printer:
    """Where the command's lines go: stdout by verbosity, problems to stderr.

    Every line is flushed at once, so a worker under systemd or supervisor shows
    its progress as it happens rather than when a buffer fills.
    """

    def __init__(
        self,
        stdout: OutputWrapper,
        stderr: OutputWrapper,
        verbosity: int,
        warning_style: Callable[[str], str],
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.verbosity = verbosity
        self.warning_style = warning_style

    def say(self, verbosity: int, text: str) -> None:
        if self.verbosity >= verbosity:
            self.stdout.write(text)
            self.stdout.flush()

    def error(self, text: str) -> None:
        self.stderr.write(text)
        self.stderr.flush()

    def warn(self, text: str) -> None:
        self.stderr.write(text, style_func=self.warning_style)
        self.stderr.flush()


def plural(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"


def when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def describe(request: ForgetRequest) -> str:
    return (
        f"{request.identifier_hint or '?'} in store view '{request.store_view}' "
        f"(request {request.pk})"
    )


def shorten(text: str, length: int) -> str:
    """One line of at most ``length`` characters, in ASCII punctuation."""
    line = " ".join(text.split())
    if len(line) <= length:
        return line
    return line[: length - len(ELLIPSIS)] + ELLIPSIS


def _from_argv(value: str) -> str:
    """An argument decoded as UTF-8, whatever the locale made of its bytes.

    Python decodes arguments with the locale's encoding; under a C or Latin-1
    locale a UTF-8 identifier arrives as escapes or mojibake. Encoding it back
    gives the bytes the shell passed, and identifiers are UTF-8.
    """
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:
        return value


def _lines(data: bytes | str) -> Iterator[str | None]:
    """The lines of a file, each decoded as UTF-8, or None where it is not UTF-8."""
    # Only "\n" ends a line: str.splitlines() would also split on control
    # characters, hiding them from validation instead of reporting them.
    if isinstance(data, str):
        yield from data.removeprefix("\ufeff").split("\n")
        return

    # A byte order mark (from Windows editors) is not part of the first identifier.
    for raw in data.removeprefix(codecs.BOM_UTF8).split(b"\n"):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            yield None


def _clean(value: str | None) -> str:
    if value is None:
        raise InvalidIdentifier("This line is not valid UTF-8; save the file as UTF-8.")
    return clean(value)


def _read(path: str, stdin: IO[Any] | None) -> bytes | str:
    if path == STDIN:
        stream = stdin or sys.stdin
        # The bytes, not the locale's decoding of them: identifiers are UTF-8.
        data: bytes | str = getattr(stream, "buffer", stream).read()
        return data

    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as err:
        raise CommandError(
            f"Cannot read {path}: {err.strerror or type(err).__name__}."
        ) from err


def read_identifiers(
    arguments: Sequence[str],
    path: str | None,
    stdin: IO[Any] | None,
    printer: Printer,
) -> list[str]:
    """Every identifier given, validated and without repeats; or CommandError."""
    entries: list[tuple[str, str | None]] = [
        (f"argument {number}", _from_argv(value))
        for number, value in enumerate(arguments, start=1)
    ]
    if path is not None:
        name = "stdin" if path == STDIN else path
        lines = _lines(_read(path, stdin))
        entries += [
            (f"{name}, line {number}", line)
            for number, line in enumerate(lines, start=1)
            if line is None or line.strip()
        ]

    found: dict[str, None] = {}
    problems: list[str] = []
    for where, value in entries:
        try:
            found[_clean(value)] = None
        except InvalidIdentifier as err:
            problems.append(f"{where}: {err}")

    if problems:
        for problem in problems:
            printer.error(problem)
        raise CommandError(
            f"{plural(len(problems), 'identifier')} cannot be sent (see above); "
            "nothing was recorded or sent."
        )
    return list(found)
