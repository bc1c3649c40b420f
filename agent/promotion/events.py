"""Event payloads of the promotion engine (documented in docs/promotion.md, schema in
docs/schemas/event.schema.json): ``type: "promotion"`` and ``type: "command"``."""

from __future__ import annotations

from typing import Any

from ..model import SCHEMA_VERSION
from .policy import Decision


def _envelope(seq: int, ts: float) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "ts": round(ts, 3), "seq": seq}


def promotion(
    site: str,
    host: str,
    decision: Decision,
    outcome: str,
    action: str,
    intent: str,
    message: str,
    dry_run: bool,
    seq: int,
    ts: float,
) -> dict[str, Any]:
    """``outcome``: the decision's kind, or engaged / released / failed once an action ran."""
    return {
        **_envelope(seq, ts),
        "type": "promotion",
        "site": site,
        "host": host,
        "id": decision.policy,
        "decision": outcome,
        "direction": decision.direction,
        "action": action,
        "intent": intent,
        "trigger": str(decision.trigger) if decision.trigger else "",
        "message": message,
        "dry_run": dry_run,
        "manual": decision.manual,
    }


def command(
    site: str,
    host: str,
    verb: str,
    decision: str,
    reason: str,
    sender: str,
    target: str,
    nonce: str,
    message: str,
    seq: int,
    ts: float,
) -> dict[str, Any]:
    """``decision``: accepted, or rejected (``reason`` says why)."""
    return {
        **_envelope(seq, ts),
        "type": "command",
        "site": site,
        "host": host,
        "id": verb,
        "decision": decision,
        "reason": reason,
        "sender": sender,
        "target": target,
        "nonce": nonce,
        "message": message,
    }
