"""The code samples of the documentation's tutorial and how-to guides, as steps to run.

The rules (docs/contributing-docs.md says the same for authors): in a sample page, every
fenced code block is one of

* a file: ```` ```python title="flows/hello.py" ```` (any language, a ``title`` that is a
  relative path): written, in page order, into the page's folder;
* commands: ```` ```console ```` with ``$ `` prompts (a trailing ``\\`` continues a line;
  the lines without a prompt are output, not checked), or ```` ```bash ```` (one script);
  each command must exit 0. ``$ export NAME=value`` sets NAME for the page's later
  commands, as in one shell;
* Python: ```` ```python ```` without a title, run as a script in the page's folder;

and an HTML comment on the line before a fence changes that:

* ``<!-- sample: skip (why) -->``: not run (something this machine cannot do, or a
  fragment); the reason is required;
* ``<!-- sample: server -->``: the command that starts the server; the test has started
  one (on a free port) in the page's folder, so the block is not run;
* ``<!-- sample: background -->``: commands that keep running (a second worker): started,
  and killed when the page ends;
* ``<!-- sample: exit=N -->``: the commands are expected to exit N.

Every ``http://127.0.0.1:8642`` (the server's default address) in a command or file is
rewritten to the test server's address.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sample", "SampleError", "parse_page"]

DEFAULT_URL = "http://127.0.0.1:8642"

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>.*)$")
_MARK = re.compile(r"^\s*<!--\s*sample:\s*(?P<what>[a-z]+)(?P<rest>.*?)\s*-->\s*$")
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')


class SampleError(ValueError):
    """A sample page that breaks the rules above (names the page and line)."""


@dataclass(frozen=True)
class Sample:
    """One step of a page: write a file, run commands, run Python, or nothing."""

    page: Path
    line: int  # of the opening fence, 1-based
    kind: str  # "file", "commands", "script", "python", "server", "skip"
    text: str  # the block's content
    path: str = ""  # for files
    commands: tuple[str, ...] = ()  # for commands
    background: bool = False
    exit_code: int = 0

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _commands(text: str, where: str) -> tuple[str, ...]:
    """The ``$ `` commands of a console block, continuation lines joined."""
    commands: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is not None:
            current.append(line)
            if not line.endswith("\\"):
                commands.append("\n".join(current))
                current = None
            continue
        if line.startswith("$ "):
            command = line[2:]
            if command.endswith("\\"):
                current = [command]
            else:
                commands.append(command)
    if current is not None:
        raise SampleError(f"{where}: a command ends with a continuation backslash")
    if not commands:
        raise SampleError(f"{where}: a console block without a `$ ` command")
    return tuple(commands)


def _blocks(page: Path) -> list[tuple[int, str, str, str]]:
    """(line, info string, content, marker comment) of each fenced block of `page`."""
    lines = page.read_text().splitlines()
    found: list[tuple[int, str, str, str]] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        previous = lines[start - 1] if start > 0 else ""
        found.append((start + 1, opening["info"].strip(), "\n".join(body) + "\n", previous))
    return found


def _marker(marker: str, where: str) -> tuple[str, int]:
    """The marker comment before a block: (what, expected exit code)."""
    mark = _MARK.match(marker)
    if not mark:
        return "", 0
    what, rest = mark["what"], mark["rest"].strip()
    if what == "skip" and not rest:
        raise SampleError(f"{where}: `sample: skip` needs a reason")
    if what == "exit":
        found = re.fullmatch(r"=\s*(\d+)", rest)
        if not found:
            raise SampleError(f"{where}: write `sample: exit=N`")
        return what, int(found[1])
    if what not in ("skip", "server", "background"):
        raise SampleError(f"{where}: unknown marker `sample: {what}`")
    return what, 0


def _sample(page: Path, line: int, info: str, text: str, marker: str) -> Sample:
    where = f"{page}:{line}"
    lang = info.split()[0] if info else ""
    title = _TITLE.search(info)
    what, exit_code = _marker(marker, where)
    if what == "server" and "orchestrion server" not in text:
        raise SampleError(f"{where}: a `sample: server` block that starts no `orchestrion server`")
    if what in ("skip", "server"):
        return Sample(page, line, what, text)
    background = what == "background"
    if title:
        path = title["title"]
        if not path or path.startswith("/") or ".." in Path(path).parts:
            raise SampleError(f"{where}: a file's title must be a relative path: {path!r}")
        return Sample(page, line, "file", text, path=path)
    kind = {"console": "commands", "bash": "script", "sh": "script", "python": "python"}.get(lang)
    if kind is None:
        raise SampleError(
            f'{where}: a ```{lang} block that is neither a file (title="path"), commands '
            "(console, bash), Python to run, nor marked `<!-- sample: skip (why) -->`"
        )
    commands = _commands(text, where) if kind == "commands" else ()
    return Sample(page, line, kind, text, commands=commands, background=background,
                  exit_code=exit_code)  # fmt: skip


def parse_page(page: Path, shown: Path | None = None) -> list[Sample]:
    """Every sample of a page, in order (raises `SampleError` on a block breaking the rules);
    `shown` is the page's name in messages (default: `page`)."""
    return [_sample(shown or page, *block) for block in _blocks(page)]


def export_of(command: str) -> tuple[str, str] | None:
    """``export NAME=value`` -> (NAME, the shell words of value), else None."""
    found = re.fullmatch(r"export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)", command.strip(), re.S)
    if not found:
        return None
    return found[1], found[2]


def quote(text: str) -> str:
    """`text` as one shell word."""
    return shlex.quote(text)
