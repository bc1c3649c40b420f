"""``hotspare central``: the central service's command (registered in agent/cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from . import config

log = logging.getLogger("hotspare.central")


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser(
        "central", help="run the central service: MQTT ingest, history, dashboard and JSON API"
    )
    sp.add_argument(
        "--config",
        "-c",
        default=config.DEFAULT_PATH,
        help=f"configuration file (default {config.DEFAULT_PATH})",
    )
    sp.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="override [central] log_level",
    )
    sp.add_argument(
        "--check", action="store_true", help="validate the configuration and exit (0: valid)"
    )
    sp.add_argument("--json", action="store_true", help="with --check: print the result as JSON")
    sp.add_argument(
        "--sample-config", action="store_true", help="print a fully commented sample configuration"
    )
    sp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.sample_config:
        sys.stdout.write(config.sample())
        return 0
    try:
        cfg = config.load(args.config)
    except config.ConfigError as e:
        if args.json:
            print(json.dumps({"ok": False, "file": e.file, "key": e.key, "error": e.message}))
        else:
            print(f"hotspare central: configuration error: {e}", file=sys.stderr)
        return config.EXIT_CONFIG
    if args.check:
        assert cfg.mqtt is not None
        summary = {
            "ok": True,
            "file": cfg.file,
            "listen": f"{cfg.listen_host}:{cfg.listen_port}",
            "broker": cfg.mqtt.url,
            "subscription": cfg.mqtt.subscription,
            "maintenance_windows": len(cfg.maintenance),
            "changes_through_api": bool(cfg.token),
            "alert_receivers": sorted(cfg.sections["alerts"].receivers)
            if "alerts" in cfg.sections
            else None,
        }
        if args.json:
            print(json.dumps(summary))
        else:
            print(f"{cfg.file}: OK")
            print(f"  dashboard http://{summary['listen']}/, broker {cfg.mqtt.url}")
            print(f"  subscription {cfg.mqtt.subscription}")
            receivers = summary["alert_receivers"]
            print(
                "  alerts off (no [alerts] section)"
                if receivers is None
                else f"  alerts to {', '.join(receivers) or 'no receiver'}"
            )
        return 0
    level = (args.log_level or cfg.log_level).upper()
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("INVOCATION_ID"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)
    from .service import Central

    try:
        central = Central(cfg)
    except Exception as e:  # the database cannot be opened: say which, without secrets
        from .history import describe_url

        print(
            f"hotspare central: cannot open the history {describe_url(cfg.database)}: "
            f"{type(e).__name__}: {e}",
            file=sys.stderr,
        )
        return 1
    return asyncio.run(central.run())
