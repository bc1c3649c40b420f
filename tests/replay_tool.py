#!/usr/bin/env python3
"""A stand-in for a vendor CLI that replays recorded real outputs (test fixture).

Configured as a collector's tool path, it prints the recorded file chosen by the first of
its arguments that is a key of the JSON object in $HOTSPARE_REPLAY, e.g.
``{"GETCONFIG": "tests/fixtures/raidctl/arcconf/...", "-a": "tests/fixtures/smart/..."}``,
and exits 0 (or with the "exit" key's value). No key matches: exits 2 naming its arguments.
It answers what the real tool answered on a real machine; it invents nothing.
"""

import json
import os
import sys


def main() -> int:
    table = json.loads(os.environ.get("HOTSPARE_REPLAY", "{}"))
    for arg in sys.argv[1:]:
        if arg in table:
            with open(table[arg], encoding="utf-8") as fh:
                sys.stdout.write(fh.read())
            return int(table.get("exit", 0))
    print(f"replay: no recording for {sys.argv[1:]}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
