"""Write hotspare(1) from the command's own argument parser, so the two cannot drift apart.

python manpage.py VERSION > hotspare.1
"""

from __future__ import annotations

import argparse
import sys

from agent.cli import parser


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-").replace("\n.", "\n\\&.")


def _subcommands(p: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str]]:
    """(full name, parser, help) of every leaf subcommand, depth first."""
    out = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                nested = _subcommands(sub)
                if nested:
                    out += [(f"{name} {n}", s, h) for n, s, h in nested]
                else:
                    out.append((name, sub, helps.get(name) or ""))
    return out


def render(version: str) -> str:
    p = parser()
    lines = [
        f'.TH HOTSPARE 1 "" "hotspare {version}" "User Commands"',
        ".SH NAME",
        "hotspare \\- hardware\\-level redundancy monitor",
        ".SH SYNOPSIS",
        ".B hotspare",
        ".I COMMAND",
        "[\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        _esc(p.description or ""),
        "The agent normally runs as the systemd service",
        ".BR hotspare\\-agent.service ;",
        "its configuration is",
        ".IR /etc/hotspare/agent.toml .",
        ".SH COMMANDS",
    ]
    for name, sub, help_text in _subcommands(p):
        usage = " ".join(sub.format_usage().split()[1:])
        lines += [".TP", f".B {_esc(name)}", _esc(help_text) + ".", ".br", f"Usage: {_esc(usage)}"]
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                lines += [
                    ".RS",
                    f".TP\n.B {_esc(', '.join(action.option_strings))}",
                    _esc(action.help or ""),
                    ".RE",
                ]
    lines += [
        ".SH EXIT STATUS",
        "\\fBhotspare check\\fR: 0 redundant, 1 degraded, 2 failed, 3 unknown.",
        "Other commands: 0 success, 78 configuration error.",
        ".SH FILES",
        ".TP\n.I /etc/hotspare/agent.toml\nthe agent's configuration",
        ".TP\n.I /etc/hotspare/agent.d/*.toml\ndrop\\-ins read after it, in name order",
        ".TP\n.I /etc/hotspare/secrets/\npassword files, mode 0600, owned by the hotspare user",
        ".TP\n.I /etc/hotspare/central.toml\nthe central service's configuration "
        "(\\fBhotspare\\-central.service\\fR starts only once it exists)",
        ".TP\n.I /var/lib/hotspare/\nthe outbox, the sequence counter, the event socket and the "
        "central service's SQLite history",
        ".TP\n.I /usr/bin/hotspare\\-mdadm\\-event\nthe same as \\fBhotspare mdadm\\-event\\fR, "
        "as one executable for the PROGRAM line of mdadm.conf",
        ".SH SEE ALSO",
        "/usr/share/doc/hotspare/install.md, /usr/share/doc/hotspare/config.md",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1]))
