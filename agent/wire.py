"""The MQTT contract: topics and payloads (documented in docs/mqtt.md, schemas in docs/schemas/).

Pure functions from the model to JSON-ready dicts. Every payload carries ``schema``,
``ts`` (UNIX seconds) and ``seq`` (strictly increasing per agent, across restarts).
"""

from __future__ import annotations

import json
import math
from typing import Any

from . import __version__
from .evaluate import Transition
from .model import SCHEMA_VERSION, ComponentHealth, GroupStatus, HostHealth


def base_topic(prefix: str, site: str, host: str) -> str:
    return f"{prefix}/{site}/{host}"


def id_topic(component_or_group_id: str) -> str:
    """An id as topic levels: its slashes stay levels; MQTT wildcards and empty levels go."""
    levels = (
        level.replace("+", "_").replace("#", "_") for level in component_or_group_id.split("/")
    )
    return "/".join(level or "_" for level in levels)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def _envelope(seq: int, ts: float) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "ts": round(ts, 3), "seq": seq}


def status(state: str, seq: int, ts: float) -> dict[str, Any]:
    return {**_envelope(seq, ts), "state": state, "version": __version__}


def group(g: GroupStatus) -> dict[str, Any]:
    return {
        "id": g.id,
        "kind": g.kind.value,
        "state": g.state.value,
        "required": g.required,
        "healthy": g.healthy,
        "unknown": g.unknown,
        "total": g.total,
        "margin": g.margin,
        "members": list(g.members),
        "spares": list(g.spares),
        "detail": g.detail,
        "reason": g.reason,
        "stated": g.stated.value if g.stated is not None else None,
    }


def component(c: ComponentHealth) -> dict[str, Any]:
    return {
        "id": c.id,
        "kind": c.kind.value,
        "state": c.state.value,
        "since": round(c.since, 3),
        "observed_at": round(c.observed_at, 3),
        "detail": c.detail,
        "value": c.value if c.value is None or math.isfinite(c.value) else None,
        "unit": c.unit,
        "source": c.source,
    }


def health(h: HostHealth, seq: int, ts: float) -> dict[str, Any]:
    return {
        **_envelope(seq, ts),
        "site": h.site,
        "host": h.host,
        "state": h.state.value,
        "role": h.role.value,
        "generated_at": round(h.generated_at, 3),
        "groups": [group(g) for g in h.groups],
        "components": [component(c) for c in h.components],
        "collectors": [{"name": c.name, "ok": c.ok, "error": c.error} for c in h.collectors],
    }


def state_message(h: HostHealth, body: dict[str, Any], seq: int, ts: float) -> dict[str, Any]:
    """A retained per-group or per-component message: the envelope, site, host and ``body``."""
    return {**_envelope(seq, ts), "site": h.site, "host": h.host, **body}


def transition_event(site: str, host: str, t: Transition, seq: int, ts: float) -> dict[str, Any]:
    return {
        **_envelope(seq, ts),
        "type": "transition",
        "site": site,
        "host": host,
        "scope": t.scope,
        "id": t.id,
        "from": t.old,
        "to": t.new,
        "reason": t.reason,
    }


def agent_event(
    site: str, host: str, kind: str, message: str, seq: int, ts: float
) -> dict[str, Any]:
    """An event about the agent itself: started, config_reloaded, config_rejected."""
    return {
        **_envelope(seq, ts),
        "type": kind,
        "site": site,
        "host": host,
        "id": host,
        "message": message,
    }
