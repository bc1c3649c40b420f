"""The ``hotspare`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time

from . import __version__, config, render, wire
from .config import ConfigError

log = logging.getLogger("hotspare")


def _setup_logging(level: str) -> None:
    # Under systemd the journal stamps the time itself.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("INVOCATION_ID"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)


def _load(path: str) -> config.Config:
    try:
        return config.load(path)
    except ConfigError as e:
        print(f"hotspare: configuration error: {e}", file=sys.stderr)
        sys.exit(config.EXIT_CONFIG)


def cmd_agent(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    _setup_logging(args.log_level or cfg.agent.log_level)
    from .daemon import Agent

    log.info(
        "hotspare %s: site %s, host %s, %d collector(s), broker %s",
        __version__,
        cfg.agent.site,
        cfg.agent.host,
        len(cfg.collectors),
        cfg.mqtt.url,
    )
    return asyncio.run(Agent(cfg, args.config).run())


def _poll(cfg: config.Config) -> dict:
    from .daemon import poll_all_once

    health = asyncio.run(poll_all_once(cfg))
    return wire.health(health, seq=0, ts=time.time())


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    _setup_logging("warning")
    payload = _poll(cfg)
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(render.table(payload, colour=sys.stdout.isatty()))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        cfg = config.load(args.config)
    except ConfigError as e:
        print(f"HOTSPARE UNKNOWN - configuration error: {e}")
        return 3
    logging.disable(logging.CRITICAL)  # a plugin prints exactly one status line
    code, line = render.check(_poll(cfg))
    print(line)
    return code


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        cfg = config.load(args.path)
    except ConfigError as e:
        if args.json:
            print(json.dumps({"ok": False, "file": e.file, "key": e.key, "error": e.message}))
        else:
            print(f"hotspare: configuration error: {e}", file=sys.stderr)
        return config.EXIT_CONFIG
    names = [f"{c.name} ({c.type}, every {c.interval:g} s)" for c in cfg.collectors]
    if args.json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "files": list(cfg.files),
                    "site": cfg.agent.site,
                    "host": cfg.agent.host,
                    "collectors": [c.name for c in cfg.collectors],
                }
            )
        )
    else:
        print(f"{', '.join(cfg.files)}: OK")
        print(f"  site {cfg.agent.site}, host {cfg.agent.host}, broker {cfg.mqtt.url}")
        print(f"  {len(names)} collector(s): {', '.join(names) or 'none'}")
    return 0


def cmd_sample_config(args: argparse.Namespace) -> int:
    from .sample import render as sample

    sys.stdout.write(sample())
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from .watch import watch

    return watch(args.url, args.prefix, args.duration)


def cmd_discover_ipmi(args: argparse.Namespace) -> int:
    from collectors import ipmi
    from collectors.base import read_secret

    try:
        password = read_secret(args.password_file) if args.password_file else ""
    except OSError as e:
        print(f"hotspare: {args.password_file}: {e.strerror or e}", file=sys.stderr)
        return config.EXIT_CONFIG
    collector = ipmi.IpmiCollector("bmc", args.address, args.port, args.username, password)
    try:
        views = collector.views()
    except Exception as e:
        text = collector.redact(f"{type(e).__name__}: {e}")
        print(f"hotspare: BMC {args.address}:{args.port}: {text}", file=sys.stderr)
        return 69  # EX_UNAVAILABLE
    finally:
        collector.close()
    found = ipmi.discover(views)
    found["config"] = ipmi.proposal(
        args.address,
        args.port,
        args.username,
        args.password_file or "/etc/hotspare/bmc.pass",
        found,
    )
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{'NUM':>4}  {'SENSOR':<20} {'COMPONENT':<16} {'STATE':<8} READING")
    for s in found["sensors"]:
        print(
            f"{s['number']:>4}  {s['name'][:20]:<20} {s['component'] or '-':<16} "
            f"{s['state'] or '-':<8} {s['reading']}"
        )
    print()
    for g in found["groups"]:
        stated = f", the BMC states {g['stated']}" if g["stated"] else ""
        print(
            f"group {g['id']} ({g['kind']}): {len(g['members'])} member(s), {g['required']} required{stated}"
        )
    print("\nProposed configuration:\n")
    print(found["config"])
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.promotion:
        from .promotion.demo import run as run_promotion

        return run_promotion(args.duration, args.pace, dashboard=args.dashboard)
    from .demo import run

    return run(args.duration, dashboard=args.dashboard)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotspare", description="Hardware-level redundancy monitor.")
    p.add_argument("--version", action="version", version=f"hotspare {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config",
            "-c",
            default=config.DEFAULT_PATH,
            help=f"configuration file (default {config.DEFAULT_PATH})",
        )

    sp = sub.add_parser("agent", help="run the agent daemon")
    with_config(sp)
    sp.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="override [agent] log_level",
    )
    sp.set_defaults(func=cmd_agent)

    sp = sub.add_parser(
        "status", help="poll once and show groups and components (no broker needed)"
    )
    with_config(sp)
    sp.add_argument("--json", action="store_true", help="print the MQTT health document")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser(
        "check", help="monitoring plugin: exit 0 redundant, 1 degraded, 2 failed, 3 unknown"
    )
    with_config(sp)
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("config", help="configuration tools")
    csub = sp.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    cp = csub.add_parser("check", help="validate a configuration file and its agent.d drop-ins")
    cp.add_argument("path", nargs="?", default=config.DEFAULT_PATH)
    cp.add_argument("--json", action="store_true", help="print the result as JSON")
    cp.set_defaults(func=cmd_config_check)

    sp = sub.add_parser("sample-config", help="print a fully commented sample configuration")
    sp.set_defaults(func=cmd_sample_config)

    sp = sub.add_parser("watch", help="show live host health from the MQTT broker")
    sp.add_argument("--url", default="mqtt://127.0.0.1:1883", help="broker URL")
    sp.add_argument("--prefix", default="hotspare/v1", help="topic prefix")
    sp.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    sp.set_defaults(func=cmd_watch)

    sp = sub.add_parser("discover", help="list what a device exposes and propose a configuration")
    dsub = sp.add_subparsers(dest="discover_command", required=True, metavar="SOURCE")
    dp = dsub.add_parser(
        "ipmi", help="a BMC over IPMI: sensors, groups, a [[collectors.ipmi]] entry"
    )
    dp.add_argument("address", help='BMC address, or "local" for /dev/ipmi0')
    dp.add_argument("--port", type=int, default=623)
    dp.add_argument("--username", "-U", default="")
    dp.add_argument("--password-file", help="file holding the password (mode 0600)")
    dp.add_argument(
        "--json", action="store_true", help="print sensors, groups and the proposal as JSON"
    )
    dp.set_defaults(func=cmd_discover_ipmi)
    from .discover_snmp import add_parser as add_discover_snmp

    add_discover_snmp(dsub)

    sp = sub.add_parser(
        "demo", help="run a private broker and an agent on demo arrays, show them live"
    )
    sp.add_argument(
        "--duration", type=float, default=0, help="stop after this many seconds (0: Ctrl-C)"
    )
    sp.add_argument(
        "--dashboard",
        action="store_true",
        help="also run the central service and print its dashboard's loopback URL",
    )
    sp.add_argument(
        "--promotion",
        action="store_true",
        help="a primary and a standby: PSU failures on the primary end with the standby promoted",
    )
    sp.add_argument(
        "--pace", type=float, default=8.0, help="--promotion: seconds between the demo's steps"
    )
    sp.set_defaults(func=cmd_demo)

    from .mdadm_event import add_parser as add_mdadm_event

    add_mdadm_event(sub)
    from central.cli import add_parser as add_central

    add_central(sub)
    from .promotion.cli import register as register_promotion

    register_promotion(sub, with_config)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
