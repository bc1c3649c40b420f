"""``hotspare-mdadm-event EVENT DEVICE [COMPONENT]``: mdadm's PROGRAM.

``mdadm --monitor`` runs its PROGRAM with the event name, the md device and, for some
events, the component device (mdadm(8), "MONITOR MODE"). It executes the PROGRAM path
itself, without a shell, so the PROGRAM line can name one executable and no arguments:
``hotspare-mdadm-event`` is that executable (``hotspare mdadm-event`` the same for manual
use), and the agent's configuration is found at ``$HOTSPARE_CONFIG`` or the default path.
mdadm waits for PROGRAM to exit before it goes on. This command hands the event to
the running agent over its event socket (``[agent] event_socket``) so the md collector
polls at once instead of at its next interval. It never waits long: mdadm runs PROGRAM
synchronously, so a missing or stuck agent makes it fail within ``--timeout`` seconds
with a message on stderr and a nonzero exit, and mdadm goes on.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import config
from .config import ConfigError
from .events import AgentEvent, send_event

EXIT_UNAVAILABLE = 69  # sysexits.h: the agent is not listening
EXIT_TEMPFAIL = 75  # sysexits.h: the agent did not take the event in time


CONFIG_ENV = "HOTSPARE_CONFIG"  # mdadm passes no options: the config path may come from here
DESCRIPTION = (
    "Called by mdadm --monitor (PROGRAM in mdadm.conf) with EVENT DEVICE [COMPONENT]; tells "
    "the running agent to re-poll its md collectors at once."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser(
        "mdadm-event",
        help="mdadm's PROGRAM: make the running agent re-poll md arrays now",
        description=DESCRIPTION,
    )
    _arguments(sp)


def _arguments(sp: argparse.ArgumentParser) -> None:
    default_config = os.environ.get(CONFIG_ENV) or config.DEFAULT_PATH
    sp.add_argument("event", help="mdadm's event name, e.g. Fail, DegradedArray, SpareActive")
    sp.add_argument("device", help="the md device, e.g. /dev/md0")
    sp.add_argument("component", nargs="?", default="", help="the component device, if any")
    sp.add_argument(
        "--config",
        "-c",
        default=default_config,
        help=f"the agent's configuration, for [agent] event_socket (default ${CONFIG_ENV}, "
        f"else {config.DEFAULT_PATH})",
    )
    sp.add_argument("--socket", help="the agent's event socket (instead of reading --config)")
    sp.add_argument(
        "--timeout", type=float, default=2.0, help="seconds to wait for the agent (default 2)"
    )
    sp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.socket
    if not path:
        try:
            path = config.load(args.config).agent.event_socket_path
        except ConfigError as e:
            print(f"hotspare mdadm-event: configuration error: {e}", file=sys.stderr)
            return config.EXIT_CONFIG
    event = AgentEvent("mdadm", args.event, args.device, args.component)
    try:
        send_event(path, event, timeout=max(0.1, args.timeout))
    except TimeoutError:
        print(
            f"hotspare mdadm-event: the agent did not take the event within {args.timeout:g} s "
            f"({path}); it re-polls at its next interval",
            file=sys.stderr,
        )
        return EXIT_TEMPFAIL
    except (FileNotFoundError, ConnectionRefusedError):
        print(
            f"hotspare mdadm-event: no agent is listening on {path} (is hotspare agent running, "
            "with an mdstat collector?); the event is not delivered",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    except OSError as e:
        print(f"hotspare mdadm-event: cannot send to {path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``hotspare-mdadm-event`` executable: the PROGRAM line of mdadm.conf."""
    p = argparse.ArgumentParser(prog="hotspare-mdadm-event", description=DESCRIPTION)
    _arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
