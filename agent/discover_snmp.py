"""``hotspare discover snmp``: what a switch exposes, and a proposed [[collectors.snmp]] entry."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from . import config

EX_UNAVAILABLE = 69


def options(args: argparse.Namespace) -> dict[str, Any]:
    from collectors.snmp import OPTIONS

    o = {k: v.default for k, v in OPTIONS.items()}
    o.update(address=args.address, port=args.port, version=args.version)
    o.update(community_file=args.community_file or "", user=args.user or "")
    o.update(auth_key_file=args.auth_key_file or "", priv_key_file=args.priv_key_file or "")
    o.update(request_timeout=args.timeout, deadline=max(5.0, args.timeout * 10))
    if args.version == "2c" and not args.community_file:
        o["community"] = args.community
    return o


def proposal(args: argparse.Namespace, name: str) -> str:
    lines = [
        "[[collectors.snmp]]",
        f'name = "{name}"',
        f'address = "{args.address}"',
        f"port = {args.port}",
        f'version = "{args.version}"',
    ]
    if args.version == "2c":
        lines.append(f'community_file = "{args.community_file or "/etc/hotspare/snmp.community"}"')
    else:
        lines += [
            f'user = "{args.user}"',
            f'auth_key_file = "{args.auth_key_file or "/etc/hotspare/snmp.auth"}"',
            f'priv_key_file = "{args.priv_key_file or "/etc/hotspare/snmp.priv"}"',
        ]
    lines.append('# ports = ["Ethernet1/49"]   # this host\'s uplinks on the switch (ifName)')
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from collectors import snmp

    name = args.name
    try:
        collector = snmp.create(name, options(args))
    except ValueError as e:
        print(f"hotspare: {e}", file=sys.stderr)
        return config.EXIT_CONFIG
    snap = asyncio.run(collector.collect(time.time()))
    switch = snap.readings[0]
    if switch.state.value != "ok":
        print(f"hotspare: {collector.target}: {switch.detail}", file=sys.stderr)
        return EX_UNAVAILABLE
    profile = collector._profile
    found = {
        "address": args.address,
        "port": args.port,
        "profile": profile.name if profile else None,
        "device": switch.detail,
        "components": [
            {"id": r.id, "kind": r.kind.value, "state": r.state.value, "detail": r.detail}
            for r in snap.readings
        ],
        "groups": [
            {"id": g.id, "kind": g.kind.value, "required": g.required, "members": list(g.members)}
            for g in snap.groups
        ],
        "sources": [
            {"component": cid, "state": state, "source": source, "oid": oid}
            for cid, state, source, oid in snmp.describe_rows(collector.last_rows)
        ],
        "config": proposal(args, name),
    }
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{collector.target}: {switch.detail}\n")
    print(f"{'COMPONENT':<36} {'STATE':<8} SOURCE")
    for s in found["sources"]:
        print(f"{s['component']:<36} {s['state']:<8} {s['source']} ({s['oid']})")
    print()
    for g in found["groups"]:
        print(
            f"group {g['id']} ({g['kind']}): {len(g['members'])} member(s), {g['required']} required"
        )
    print("\nProposed configuration:\n")
    print(found["config"])
    return 0


def add_parser(dsub: Any) -> None:
    dp = dsub.add_parser(
        "snmp", help="a switch over SNMP: profile, PSUs, fans, groups, a [[collectors.snmp]] entry"
    )
    dp.add_argument("address", help="the switch's address")
    dp.add_argument("--port", type=int, default=161)
    dp.add_argument("--name", default="tor-a", help="its name in the proposal")
    dp.add_argument("--version", choices=("2c", "3"), default="2c")
    dp.add_argument("--community", default="public", help="v2c community (prefer the file)")
    dp.add_argument("--community-file", help="file holding the v2c community (mode 0600)")
    dp.add_argument("--user", help="SNMPv3 user (authPriv, SHA-256/AES)")
    dp.add_argument("--auth-key-file", help="file holding the v3 auth passphrase (mode 0600)")
    dp.add_argument("--priv-key-file", help="file holding the v3 priv passphrase (mode 0600)")
    dp.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
    dp.add_argument("--json", action="store_true", help="print everything as JSON")
    dp.set_defaults(func=run)
