"""Hardware RAID controllers, asked through their vendor's command-line tool.

Tools: storcli/perccli, MegaCli, ssacli/hpssacli/hpacucli, arcconf, sas2ircu/sas3ircu.

One instance watches the controllers of one tool. The tool runs with an argument list,
never through a shell, with ``command_timeout``; its text is parsed by the pure parser of
``collectors.raid.<vendor>`` and turned into Readings and groups by
``collectors.raid.model.snapshot`` (see there for the component and group layout). A host
without the tool is not applicable: said once in the log, an empty Snapshot, no error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from collectors.base import Option, Snapshot, option_values
from collectors.raid import arcconf, megacli, model, sasircu, ssacli, storcli
from collectors.tool import NotApplicable, Runner, ToolError, ToolMissing, run_tool

# tool -> (parser module, the program's usual name)
TOOLS: Mapping[str, tuple[ModuleType, str]] = {
    "storcli": (storcli, "storcli64"),
    "perccli": (storcli, "perccli64"),
    "megacli": (megacli, "MegaCli64"),
    "ssacli": (ssacli, "ssacli"),
    "hpssacli": (ssacli, "hpssacli"),
    "hpacucli": (ssacli, "hpacucli"),
    "arcconf": (arcconf, "arcconf"),
    "sas2ircu": (sasircu, "sas2ircu"),
    "sas3ircu": (sasircu, "sas3ircu"),
}

OPTIONS: dict[str, Option] = {
    "tool": Option(
        str,
        None,
        "The vendor tool that talks to the controllers.",
        required=True,
        choices=tuple(TOOLS),
        example="storcli",
    ),
    "path": Option(
        str,
        "",
        "The tool's program: a name looked up in PATH or a full path. Empty: the tool's usual "
        "name (storcli64, perccli64, MegaCli64, ssacli, hpssacli, hpacucli, arcconf, sas2ircu, "
        "sas3ircu).",
    ),
    "command_timeout": Option(
        float, 30.0, "Seconds one call of the tool may take before it is killed."
    ),
}

UNIQUE_ACROSS_INSTANCES = ("tool",)


@dataclass(slots=True)
class RaidCollector:
    name: str
    tool: str
    path: str
    command_timeout: float = OPTIONS["command_timeout"].default
    run: Runner = run_tool
    missing: NotApplicable = field(init=False)

    def __post_init__(self) -> None:
        self.missing = NotApplicable(self.name)

    def _ask(self) -> Callable[[tuple[str, ...]], str]:
        def ask(args: tuple[str, ...]) -> str:
            result = self.run((self.path, *args), self.command_timeout)
            if not result.stdout.strip():
                raise ToolError(
                    f"{' '.join(result.argv)}: no output (exit status {result.returncode}"
                    + (f": {result.stderr.strip()[:200]}" if result.stderr.strip() else "")
                    + ")"
                )
            return result.stdout

        return ask

    def collect(self, now: float) -> Snapshot:
        module = TOOLS[self.tool][0]
        try:
            controllers = module.query(self._ask())
        except ToolMissing as e:
            self.missing.note(e)
            return Snapshot()
        self.missing.reset()
        return model.snapshot(controllers, now)


def create(name: str, options: Mapping[str, Any]) -> RaidCollector:
    """A collector from its configuration options (see OPTIONS)."""
    o = option_values(options, OPTIONS)
    tool = o["tool"]
    if tool not in TOOLS:
        raise ValueError(f"{name}: option 'tool' must be one of {', '.join(TOOLS)}, not {tool!r}")
    return RaidCollector(
        name=name,
        tool=tool,
        path=o["path"] or TOOLS[tool][1],
        command_timeout=o["command_timeout"] or OPTIONS["command_timeout"].default,
    )
