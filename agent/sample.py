"""The sample configuration, generated from the option tables the parser validates with.

Every key is shown with its sentence of help; the commented value is the default.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from typing import Any

from collectors.base import Option

from . import config

HEADER = """\
# hotspare agent configuration: /etc/hotspare/agent.toml
#
# Drop-in files in agent.d/*.toml beside this file are read after it, in name order:
# their [agent], [mqtt] and [prometheus] keys override these, their collectors and
# groups add to these. Unknown keys are errors. `hotspare config check PATH` validates.
# A commented value is the default.
"""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | list | tuple):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return repr(value)


def _keys(options: Mapping[str, Option]) -> list[str]:
    lines: list[str] = []
    for key, opt in options.items():
        help_text = opt.help
        if opt.choices:
            help_text += " One of: " + ", ".join(toml_value(c) for c in opt.choices) + "."
        lines.extend(textwrap.wrap(help_text, 90, initial_indent="# ", subsequent_indent="# "))
        if opt.required:
            lines.append(f"{key} = {toml_value(opt.example)}")
        else:
            lines.append(f"# {key} = {toml_value(opt.default)}")
    return lines


def render() -> str:
    out = [HEADER]
    for section, options in (
        ("agent", config.AGENT_OPTIONS),
        ("mqtt", config.MQTT_OPTIONS),
        ("prometheus", config.PROMETHEUS_OPTIONS),
    ):
        out += [f"[{section}]", *_keys(options), ""]
    out.append("# Collectors: one [[collectors.TYPE]] table per instance; a type may have several.")
    for kind in config.COLLECTOR_MODULES:
        module = config.collector_module(kind)
        doc = (module.__doc__ or kind).strip().splitlines()[0]
        out += [f"# {doc}", f"[[collectors.{kind}]]"]
        out += [*_keys({**config.COLLECTOR_COMMON, **module.OPTIONS}), ""]
    out.append(
        "# Redundancy groups of your own, or overrides of discovered ones (uncomment to use)."
    )
    out.append("# [[groups]]")
    out += ["# " + line for line in _keys(config.GROUP_OPTIONS)]
    return "\n".join(out) + "\n"
