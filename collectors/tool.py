"""Running a vendor or system command-line tool: argv only (never a shell), with a timeout.

Shared by the collectors that ask a tool (RAID controller CLIs, ``smartctl``, ``zpool``).
``run_tool`` is the I/O seam those collectors take as a constructor argument, so tests
hand them recorded outputs instead. ``NotApplicable`` tells "logged once" apart from
"failed every poll": a tool that is not installed means the host has nothing for that
collector to watch, like a host without ``/proc/mdstat``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("hotspare.collectors")


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool printed and its exit status (many tools exit non-zero with a good answer)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str = ""


class ToolMissing(FileNotFoundError):
    """The tool is not installed (or not executable) at the configured path."""


class ToolError(RuntimeError):
    """The tool ran but gave no usable answer; the message names the command."""


Runner = Callable[[Sequence[str], float], ToolResult]


def run_tool(argv: Sequence[str], timeout: float) -> ToolResult:
    """Run ``argv`` (no shell) in the C locale; raise ToolMissing when it is not there.

    A tool that outlives ``timeout`` seconds is killed and TimeoutError raised, naming it.
    """
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            check=False,
        )
    except (FileNotFoundError, NotADirectoryError) as e:
        raise ToolMissing(f"{argv[0]}: not installed") from e
    except PermissionError as e:
        raise ToolMissing(f"{argv[0]}: not executable") from e
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{' '.join(argv)}: no answer within {timeout:g} s") from None
    return ToolResult(tuple(argv), done.returncode, done.stdout, done.stderr)


@dataclass(slots=True)
class NotApplicable:
    """Says once per collector instance that its tool is missing; quiet on later polls."""

    name: str
    said: bool = field(default=False)

    def note(self, error: ToolMissing) -> None:
        if not self.said:
            log.info("collector %s: %s: not applicable on this host", self.name, error)
            self.said = True

    def reset(self) -> None:
        """The tool is back: a later disappearance is said again."""
        if self.said:
            log.info("collector %s: its tool answers again", self.name)
        self.said = False
