"""Signed commands: Ed25519 over the command, its timestamp and a nonce.

A command on ``<prefix>/<site>/<target>/cmd/<verb>`` is JSON::

    {"command": {"verb": "promote", "target": "db-02", "site": "dc1", "sender": "ops",
                 "ts": 1764095400.123, "nonce": "9f2c...", "args": {"policy": ""}},
     "sig": "<base64 Ed25519 signature of the canonical JSON of command>"}

The canonical JSON is ``json.dumps(command, sort_keys=True, separators=(",", ":"))``.
The receiver looks the sender's public key up among its trusted keys (``<sender>.pub``
in ``[promotion] trusted_keys``) and rejects, each with its own reason: a payload that is
not such a document (unsigned), an unknown sender, a bad signature, a verb or target that
does not match the topic or this host, a timestamp further than ``max_skew`` from now
(stale), and a nonce seen before (replayed). Private keys are PEM (PKCS#8) files that only
their owner may read; ``hotspare keygen`` writes a pair.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

VERBS = ("promote", "demote", "failback", "declare_dead")


class KeyFileError(ValueError):
    """A key file that cannot be used (message names the file; never contains key material)."""


def canonical(command: Mapping[str, Any]) -> bytes:
    return json.dumps(command, sort_keys=True, separators=(",", ":")).encode()


def check_private_mode(path: Path) -> None:
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            "make it 0600 or 0400"
        )
    if st.st_uid not in (0, os.geteuid()):
        raise KeyFileError(f"{path} is owned by uid {st.st_uid}, not root or this user")


def _check_not_writable(path: Path) -> None:
    st = path.stat()
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise KeyFileError(
            f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}): "
            "anyone could add a trusted key"
        )
    if st.st_uid not in (0, os.geteuid()):
        raise KeyFileError(f"{path} is owned by uid {st.st_uid}, not root or this user")


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    p = Path(path)
    try:
        check_private_mode(p)
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except KeyFileError:
        raise
    except OSError as e:
        raise KeyFileError(f"{p}: {e.strerror or e}") from None
    except ValueError:
        raise KeyFileError(f"{p}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{p}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        _check_not_writable(path)
        key = serialization.load_pem_public_key(path.read_bytes())
    except KeyFileError:
        raise
    except OSError as e:
        raise KeyFileError(f"{path}: {e.strerror or e}") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def load_trusted(directory: str | os.PathLike[str]) -> dict[str, Ed25519PublicKey]:
    """``<sender>.pub`` files of a directory that only root (or this user) may write."""
    d = Path(directory)
    try:
        _check_not_writable(d)
        files = sorted(d.glob("*.pub"))
    except OSError as e:
        raise KeyFileError(f"{d}: {e.strerror or e}") from None
    return {f.name[: -len(".pub")]: load_public_key(f) for f in files}


def generate(private_path: Path) -> Path:
    """Write a new key pair: ``private_path`` (0600) and ``private_path.pub``; returns the latter."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = private_path.with_name(private_path.name + ".pub")
    pub.write_bytes(public_pem(key))
    os.chmod(pub, 0o644)
    return pub


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(
    key: Ed25519PrivateKey,
    verb: str,
    target: str,
    site: str,
    sender: str,
    ts: float,
    args: Mapping[str, Any] | None = None,
    nonce: str = "",
) -> dict[str, Any]:
    command = {
        "verb": verb,
        "target": target,
        "site": site,
        "sender": sender,
        "ts": round(ts, 3),
        "nonce": nonce or secrets.token_hex(16),
        "args": dict(args or {}),
    }
    sig = base64.b64encode(key.sign(canonical(command))).decode()
    return {"command": command, "sig": sig}


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str  # "accepted" or why not: unsigned, unknown_sender, bad_signature, ...
    detail: str
    command: Mapping[str, Any] | None = None

    @property
    def sender(self) -> str:
        return str((self.command or {}).get("sender", ""))

    @property
    def nonce(self) -> str:
        return str((self.command or {}).get("nonce", ""))


@dataclass
class NonceCache:
    """Nonces seen within the skew window; older ones are stale anyway and are dropped."""

    window: float
    seen: dict[str, float] = field(default_factory=dict)

    def add(self, nonce: str, ts: float, now: float) -> bool:
        """False when ``nonce`` was seen before (a replay)."""
        for n, t in list(self.seen.items()):
            if t < now - 2 * self.window:
                del self.seen[n]
        if nonce in self.seen:
            return False
        self.seen[nonce] = ts
        return True


def verify(
    payload: bytes,
    topic_verb: str,
    host: str,
    site: str,
    trusted: Mapping[str, Ed25519PublicKey],
    now: float,
    max_skew: float,
    nonces: NonceCache,
) -> Verdict:
    def no(reason: str, detail: str, command: Mapping[str, Any] | None = None) -> Verdict:
        return Verdict(False, reason, detail, command)

    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return no("unsigned", "payload is not JSON")
    command = doc.get("command") if isinstance(doc, dict) else None
    sig = doc.get("sig") if isinstance(doc, dict) else None
    if not isinstance(command, dict) or not isinstance(sig, str) or not sig:
        return no("unsigned", "no command or no signature")
    fields = {"verb": str, "target": str, "site": str, "sender": str, "nonce": str, "args": dict}
    for name, kind in fields.items():
        if not isinstance(command.get(name), kind):
            return no("malformed", f"command.{name} missing or not a {kind.__name__}", command)
    if not isinstance(command.get("ts"), int | float) or isinstance(command.get("ts"), bool):
        return no("malformed", "command.ts missing or not a number", command)
    sender = command["sender"]
    key = trusted.get(sender)
    if key is None:
        return no("unknown_sender", f"no trusted key for sender {sender!r}", command)
    try:
        key.verify(base64.b64decode(sig, validate=True), canonical(command))
    except (InvalidSignature, binascii.Error, ValueError):
        return no("bad_signature", f"signature does not verify with {sender}'s key", command)
    if command["verb"] != topic_verb or command["verb"] not in VERBS:
        return no("wrong_verb", f"verb {command['verb']!r} on the cmd/{topic_verb} topic", command)
    if command["target"] != host or command["site"] != site:
        return no(
            "wrong_target", f"for {command['site']}/{command['target']}, not {site}/{host}", command
        )
    age = now - float(command["ts"])
    if abs(age) > max_skew:
        return no("stale", f"timestamp {age:+.1f} s from now; max_skew is {max_skew:g} s", command)
    if not nonces.add(command["nonce"], float(command["ts"]), now):
        return no("replayed", f"nonce {command['nonce'][:12]}... seen before", command)
    return Verdict(True, "accepted", f"{command['verb']} from {sender}", command)
