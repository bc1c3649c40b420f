"""The promotion engine inside the agent: facts in, decisions out, actions run, events sent.

The daemon calls ``update`` after every evaluation with the reported states and whether
its MQTT connection is up; ``on_connect`` subscribes (on the agent's own connection, the
one that carries its Last Will) to its ``cmd/+`` topics and to the ``status`` and
``health`` of every peer a policy names. Actions run in a thread, one at a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .. import wire
from . import actions, events, fence, signing
from .policy import Decision, Engine, Kind
from .settings import PolicySettings, PromotionSettings

log = logging.getLogger("hotspare.promotion")

LOUD = {"failed", "suppressed", "failback_required"}


class Runtime:
    def __init__(
        self,
        settings: PromotionSettings,
        site: str,
        host: str,
        prefix: str,
        enqueue: Callable[[dict[str, Any]], None],
        seq: Callable[[], int],
        clock: Callable[[], float],
        save: Callable[[bytes], None] = lambda b: None,
        saved: bytes | None = None,
    ) -> None:
        """Raises ``signing.KeyFileError`` when a key file cannot be used."""
        self.settings = settings
        self.site, self.host, self.prefix = site, host, prefix
        self._enqueue, self._seq, self.clock, self._save = enqueue, seq, clock, save
        self.trusted = signing.load_trusted(settings.trusted_keys) if settings.trusted_keys else {}
        self.key = signing.load_private_key(settings.signing_key) if settings.signing_key else None
        self.nonces = signing.NonceCache(settings.max_skew)
        self.policies = {p.spec.name: p for p in settings.policies}
        self.engine = Engine(tuple(p.spec for p in settings.policies))
        self.witnesses: list[fence.Witness] = []
        self.executors = {p.spec.name: self._executor(p) for p in settings.policies}
        self.peer_status: dict[str, str] = {}
        self.peer_health: dict[str, str] = {}
        self.local: Mapping[tuple[str, str], str] = {}
        self.connected = False
        self.client: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._restore(saved)

    # --- building -------------------------------------------------------------------
    def _executor(self, p: PolicySettings) -> actions.Executor:
        from pathlib import Path

        o = p.options
        inner: actions.Executor
        match p.spec.action:
            case "keepalived":
                inner = actions.Keepalived(Path(o["track_file"]), o["engaged"], o["released"])
            case "pacemaker":
                inner = actions.Pacemaker(o["attribute"], o["command"], o["timeout"])
            case "bond":
                inner = actions.Bond(
                    o["bond"], o["engaged_slave"], o["released_slave"], Path(o["sysfs_root"])
                )
            case "hook":
                inner = actions.Hook(tuple(o["argv"]), o["timeout"])
            case _:
                inner = actions.PeerCommand(
                    o["target"], o["engage_verb"], o["release_verb"], self.send, o["policy"]
                )
        f = p.fence
        if f is None:
            return inner
        if f.method == "ipmi":
            gate: fence.Ipmi | fence.Witness = fence.Ipmi(
                f.options["address"],
                f.options["port"],
                f.options["username"],
                f.password,
                f.options["verify_timeout"],
            )
        else:
            gate = fence.Witness(
                f.options["witness"], f.options["max_age"], f.options["wait"], self.clock
            )
            self.witnesses.append(gate)
        return fence.Fenced(gate, f.peer, inner)

    def _restore(self, saved: bytes | None) -> None:
        """Policies engaged before a restart stay engaged (their action is still in force)."""
        if not saved:
            return
        try:
            names = json.loads(saved)
        except ValueError:
            return
        for name in names if isinstance(names, list) else []:
            if name in self.policies:
                self.engine.finished(name, "engage", True, -1e18)
                log.info("policy %s: engaged before the restart; still engaged", name)

    def role(self) -> str:
        """primary / standby / none: the configured role, changed by what is engaged."""
        intents = {self.policies[n].spec.intent.value for n in self.engine.engaged()}
        if "promote" in intents:
            return "primary"
        if "step_down" in intents:
            return "standby"
        return self.settings.role

    # --- MQTT -----------------------------------------------------------------------
    @property
    def base(self) -> str:
        return wire.base_topic(self.prefix, self.site, self.host)

    def on_connect(self, client: Any) -> None:
        """Subscribe on the agent's connection (called after every connect)."""
        loop = asyncio.get_running_loop()
        self.client = client

        def deliver(_client: Any, _userdata: Any, msg: Any) -> None:
            loop.call_soon_threadsafe(self.on_message, msg.topic, bytes(msg.payload))

        subs = [f"{self.base}/cmd/+"]
        for peer in self.settings.peers:
            peer_base = wire.base_topic(self.prefix, self.site, peer)
            subs += [f"{peer_base}/status", f"{peer_base}/health"]
        for topic in subs:
            client.message_callback_add(topic, deliver)
        client.subscribe([(t, 1) for t in subs])

    def on_message(self, topic: str, payload: bytes) -> None:
        now = self.clock()
        if topic.startswith(f"{self.base}/cmd/"):
            self._command(topic.rsplit("/", 1)[1], payload, now)
            return
        peer, _, kind = topic[len(self.prefix) + len(self.site) + 2 :].partition("/")
        try:
            doc = json.loads(payload) if payload else {}
            state = str(doc.get("state", "")) if isinstance(doc, dict) else ""
        except ValueError:
            state = ""
        if kind == "status":
            self.peer_status[peer] = state
        elif kind == "health":
            self.peer_health[peer] = state
        self._step(now)

    def send(self, verb: str, target: str, args: Mapping[str, str]) -> actions.Result:
        """Sign and publish a command (from an executor thread); Result when the broker has it."""
        if self.key is None:
            return actions.Result(False, "no [promotion] signing_key: cannot sign a command")
        client = self.client
        if client is None or not self.connected:
            return actions.Result(False, "not connected to the broker")
        doc = signing.sign(self.key, verb, target, self.site, self.host, self.clock(), args)
        topic = f"{wire.base_topic(self.prefix, self.site, target)}/cmd/{verb}"
        info = client.publish(topic, json.dumps(doc).encode(), qos=1)
        try:
            info.wait_for_publish(timeout=10)
        except (RuntimeError, ValueError) as e:
            return actions.Result(False, f"{verb} to {target}: {e}")
        if not info.is_published():
            return actions.Result(False, f"{verb} to {target}: no acknowledgement from the broker")
        nonce = doc["command"]["nonce"]
        return actions.Result(True, f"signed {verb} sent to {target} (nonce {nonce[:12]}...)")

    # --- commands -------------------------------------------------------------------
    def _command(self, verb: str, payload: bytes, now: float) -> None:
        v = signing.verify(
            payload,
            verb,
            self.host,
            self.site,
            self.trusted,
            now,
            self.settings.max_skew,
            self.nonces,
        )
        cmd = v.command or {}
        self._emit(
            events.command(
                self.site,
                self.host,
                verb,
                "accepted" if v.ok else "rejected",
                v.reason,
                v.sender,
                str(cmd.get("target", "")),
                v.nonce,
                v.detail,
                self._seq(),
                now,
            )
        )
        if not v.ok:
            log.warning("command on cmd/%s rejected (%s): %s", verb, v.reason, v.detail)
            return
        log.info("command %s accepted: %s", verb, v.detail)
        args = cmd.get("args", {})
        if verb == "declare_dead":
            peer = str(args.get("about", "") or args.get("peer", ""))
            for w in self.witnesses:
                w.declare(v.sender, peer, now)
            return
        self._handle(self.engine.command(verb, now, str(args.get("policy", ""))), now)

    # --- the loop -------------------------------------------------------------------
    def facts(self) -> dict[tuple[str, str], str]:
        out = dict(self.local)
        for peer in self.settings.peers:
            status, health = self.peer_status.get(peer), self.peer_health.get(peer)
            if not self.connected or status is None:
                state = "unknown"
            elif status == "offline":
                state = "offline"
            else:
                state = health or "unknown"
            out[("peer", peer)] = state
        out[("broker", "connection")] = "connected" if self.connected else "lost"
        return out

    def update(self, local: Mapping[tuple[str, str], str], connected: bool) -> None:
        self.local, self.connected = local, connected
        self._step(self.clock())

    def _step(self, now: float) -> None:
        self._handle(self.engine.step(self.facts(), now), now)
        self._arm(now)

    def _arm(self, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.engine.next_deadline(now)
        if due is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, due - now) + 0.01, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._step(self.clock())

    def _handle(self, decisions: list[Decision], now: float) -> None:
        for d in decisions:
            p = self.policies.get(d.policy)
            self._report(d, d.kind.value, d.reason, now)
            if d.kind == Kind.DRY_RUN:
                self._save_engaged()
            if d.execute and p is not None:
                task = asyncio.get_running_loop().create_task(self._execute(d, p))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _execute(self, d: Decision, p: PolicySettings) -> None:
        ctx = actions.Context(
            p.spec.name,
            p.spec.intent.value,
            d.direction,
            self.site,
            self.host,
            d.trigger,
            d.reason,
            d.manual,
        )
        try:
            result = await asyncio.to_thread(self.executors[p.spec.name].run, ctx)
        except Exception as e:  # an executor bug must not leave the engine busy forever
            result = actions.Result(False, f"{type(e).__name__}: {e}")
        now = self.clock()
        self.engine.finished(p.spec.name, d.direction, result.ok, now)
        outcome = ("engaged" if d.direction == "engage" else "released") if result.ok else "failed"
        self._report(d, outcome, result.message, now)
        self._save_engaged()
        self._step(now)

    def _report(self, d: Decision, outcome: str, message: str, now: float) -> None:
        p = self.policies.get(d.policy)
        action = p.spec.action if p else ""
        intent = p.spec.intent.value if p else ""
        dry = p.spec.dry_run if p else False
        level = (
            logging.ERROR
            if outcome == "failed"
            else logging.WARNING
            if outcome in LOUD
            else logging.INFO
        )
        log.log(
            level,
            "policy %s: %s %s%s: %s",
            d.policy,
            outcome,
            d.direction,
            f" ({d.trigger})" if d.trigger else "",
            message,
        )
        self._emit(
            events.promotion(
                self.site, self.host, d, outcome, action, intent, message, dry, self._seq(), now
            )
        )

    def _emit(self, event: dict[str, Any]) -> None:
        self._enqueue(event)

    def _save_engaged(self) -> None:
        self._save(json.dumps(self.engine.engaged()).encode())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
