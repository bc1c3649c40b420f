"""Write the packages' copyright file: hotspare's licence and every bundled distribution's.

    python copyright.py SITE_PACKAGES > copyright

The venv carries third-party distributions; their names, versions and declared licences
come from their own metadata (License-Expression, License, or the licence classifiers),
and their licence texts stay in their ``*.dist-info`` directories, which are listed.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

HEADER = """\
hotspare: hardware-level redundancy monitor

Copyright 2026 the hotspare authors
License: Apache-2.0

On Debian systems the full text of the Apache License 2.0 is in
/usr/share/common-licenses/Apache-2.0; it is also at
https://www.apache.org/licenses/LICENSE-2.0

The private Python environment under /opt/venvs/hotspare bundles these
distributions, unmodified, as published on the Python Package Index. Each one's
licence text is in its .dist-info directory (under licenses/ or beside METADATA)
in /opt/venvs/hotspare/lib/python3.11/site-packages/.
"""


def declared_licence(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    if meta.get("License-Expression"):
        return meta["License-Expression"]
    classifiers = [
        c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) < 80:
        return text
    return ", ".join(classifiers) or "see the licence file in its .dist-info directory"


def render(site_packages: Path) -> str:
    lines = [HEADER]
    dists = sorted(
        metadata.distributions(path=[str(site_packages)]), key=lambda d: d.metadata["Name"].lower()
    )
    for dist in dists:
        name = dist.metadata["Name"]
        if name.lower() == "hotspare":
            continue
        lines.append(f" {name} {dist.version}: {declared_licence(dist)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(Path(sys.argv[1])))
