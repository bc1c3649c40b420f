"""The dashboard and the JSON API (aiohttp). The pages are static files that use the API.

Read-only endpoints are open when the service listens on loopback (or ``public_read`` is
set) and otherwise need the bearer token; changes (maintenance windows) always need it.
Live updates go out as server-sent events on ``/api/stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from . import availability as av
from .alerting import Alerting
from .commands import VERBS, Commander
from .contract import SEVERITY
from .history import History, Maintenance
from .ingest import Ingest
from .openapi import document as openapi_document
from .state import Fleet, Host

log = logging.getLogger("hotspare.central.web")

STATIC = Path(__file__).resolve().parent / "static"
MAX_LIMIT = 1000
WINDOWS = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "month": av.MONTH}


class Hub:
    """Live-update fan-out: one bounded queue per SSE client; a slow client is dropped."""

    def __init__(self) -> None:
        self.clients: set[asyncio.Queue[str | None]] = set()

    def send(self, event: str, data: Any) -> None:
        if not self.clients:
            return
        frame = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        for q in list(self.clients):
            try:
                q.put_nowait(frame)
            except asyncio.QueueFull:  # too slow: end its stream; EventSource reconnects
                self.clients.discard(q)
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(None)

    def close(self) -> None:
        for q in list(self.clients):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)
        self.clients.clear()


class Api:
    def __init__(
        self,
        fleet: Fleet,
        history: History,
        ingest: Ingest,
        hub: Hub,
        token: str,
        open_reads: bool,
        sla_target: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet
        self.history = history
        self.ingest = ingest
        self.hub = hub
        self.token = token
        self.open_reads = open_reads
        self.sla_target = sla_target
        self.clock = clock
        self.alerting: Alerting | None = None  # alert routing, when configured
        self.commander: Commander | None = None  # signed commands, when configured
        self.broker: Callable[[], dict[str, Any]] | None = None  # the MQTT connection's status
        self._sorted: list[Host] = []  # every host by (site, name): see _by_name

    # --- app -----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth, self._errors])
        r = app.router
        r.add_get("/", self.index)
        r.add_static("/static/", STATIC)
        r.add_get("/api/openapi.json", self.openapi)
        r.add_get("/api/fleet", self.fleet_list)
        r.add_get("/api/summary", self.summary)
        r.add_get("/api/groups", self.groups)
        r.add_get("/api/hosts/{site}/{host}", self.host)
        r.add_post("/api/hosts/{site}/{host}/commands", self.command)
        r.add_get("/api/events", self.events)
        r.add_get("/api/transitions", self.transitions)
        r.add_get("/api/availability", self.availability)
        r.add_get("/api/maintenance", self.maintenance_list)
        r.add_post("/api/maintenance", self.maintenance_add)
        r.add_delete("/api/maintenance/{id}", self.maintenance_delete)
        r.add_get("/api/alerts", self.alerts)
        r.add_get("/api/silences", self.silences)
        r.add_post("/api/silences", self.silence_add)
        r.add_delete("/api/silences/{id}", self.silence_delete)
        r.add_get("/api/stats", self.stats)
        r.add_get("/api/stream", self.stream)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        path = request.path
        if path.startswith("/api/") and path != "/api/openapi.json":
            mutating = request.method not in ("GET", "HEAD", "OPTIONS")
            if mutating and not self.token:
                return _error(403, "changes through the API are off: no [central] token_file")
            if (mutating or not self.open_reads) and not self._authorized(request):
                resp = _error(401, "a bearer token is required (Authorization: Bearer ...)")
                resp.headers["WWW-Authenticate"] = 'Bearer realm="hotspare"'
                return resp
        return await handler(request)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return (
            bool(self.token)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), self.token.encode())
        )

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except BadRequest as e:
            return _error(400, str(e))
        except NotConfigured:
            return _error(409, "alert routing is off: the configuration has no [alerts] section")

    # --- pages ---------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(openapi_document())

    # --- reads ---------------------------------------------------------------------------
    async def fleet_list(self, request: web.Request) -> web.Response:
        q = request.query
        limit, offset = _paging(q)
        site = q.get("site", "")
        states = _set(q.get("state"))
        name, group = q.get("q", "").lower(), q.get("group", "")
        hosts = self._by_name()
        if site or states or name or group:
            hosts = [
                h
                for h in hosts
                if (not site or h.site == site)
                and (not states or (h.state or "none") in states)
                and (not name or name in h.host.lower())
                and (not group or group in h.groups)
            ]
        summary = self.fleet.summary.as_dict(site)
        if states or name or group:
            counts: dict[str, int] = {}
            for h in hosts:
                counts[h.state or "none"] = counts.get(h.state or "none", 0) + 1
        else:  # every host (of the site): the summary has counted them already
            counts = dict(summary["states"])
        if q.get("sort", "name") == "state":  # stable: by name within a state
            hosts = sorted(hosts, key=lambda h: -SEVERITY.get(h.state or "", -1))
        page = hosts[offset : offset + limit]
        groups = sorted({g for h in page for g in h.groups})
        return _json(
            {
                "total": len(hosts),
                "offset": offset,
                "limit": limit,
                "counts": counts,
                "sites": self.fleet.summary.sites(),
                "groups": groups,
                "summary": summary,
                "hosts": [h.summary() for h in page],
            }
        )

    def _by_name(self) -> list[Host]:
        """Every host by site and name; sorted again only when hosts were added (the fleet
        never forgets one), so a page of 10 000 hosts costs a slice, not a sort."""
        if len(self._sorted) != len(self.fleet.hosts):
            self._sorted = sorted(self.fleet.hosts.values(), key=lambda h: (h.site, h.host))
        return self._sorted

    async def summary(self, request: web.Request) -> web.Response:
        site = request.query.get("site", "")
        return _json(
            {
                "site": site or None,
                "sites": self.fleet.summary.sites(),
                **self.fleet.summary.as_dict(site),
            }
        )

    async def groups(self, request: web.Request) -> web.Response:
        q = request.query
        limit, offset = _paging(q)
        states = _set(q.get("state"))
        rows = [
            {"site": h.site, "host": h.host, "host_online": h.online, **g}
            for h in sorted(self.fleet.hosts.values(), key=lambda h: (h.site, h.host))
            if not q.get("site") or h.site == q["site"]
            for _, g in sorted(h.groups.items())
            if (not states or g["state"] in states)
            and (not q.get("kind") or g["kind"] == q["kind"])
        ]
        return _json(
            {
                "total": len(rows),
                "offset": offset,
                "limit": limit,
                "groups": rows[offset : offset + limit],
            }
        )

    async def host(self, request: web.Request) -> web.Response:
        h = self._host(request)
        health = h.health or {}
        groups = []
        for _gid, g in sorted(h.groups.items()):
            members = [h.components.get(cid, {"id": cid, "state": None}) for cid in g["members"]]
            spares = [h.components.get(cid, {"id": cid, "state": None}) for cid in g["spares"]]
            groups.append({**g, "member_details": members, "spare_details": spares})
        return _json(
            {
                **h.summary(),
                "version": h.version or None,
                "generated_at": health.get("generated_at"),
                "groups": groups,
                "components": [c for _, c in sorted(h.components.items())],
                "collectors": health.get("collectors", []),
                "transitions": self.history.transitions(h.site, h.host, limit=100),
                "events": self.history.events(h.site, h.host, limit=100),
            }
        )

    async def command(self, request: web.Request) -> web.Response:
        """Sign and send promote/demote/failback to the host's agent; wait for its answer."""
        if self.commander is None:
            return _error(409, "commands are off: the configuration has no [commands] section")
        h = self._host(request)
        body = await _json_object(request, {"verb", "policy"})
        verb, policy = body.get("verb"), body.get("policy", "")
        if verb not in VERBS:
            raise BadRequest(f"verb: expected one of {', '.join(VERBS)}, got {verb!r}")
        if not isinstance(policy, str):
            raise BadRequest("policy: expected a string")
        outcome = await self.commander.send(h.site, h.host, verb, policy)
        if outcome["command"] is not None:
            status = 200
        else:
            status = 503 if outcome["error"] == "broker not connected" else 504
        return _json(outcome, status=status)

    def _host(self, request: web.Request) -> Host:
        key = (request.match_info["site"], request.match_info["host"])
        h = self.fleet.hosts.get(key)
        if h is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no host {key[0]}/{key[1]}"}),
                content_type="application/json",
            )
        return h

    async def events(self, request: web.Request) -> web.Response:
        q = request.query
        limit, _ = _paging(q)
        before = _float(q, "before")
        rows = self.history.events(q.get("site", ""), q.get("host", ""), limit, before)
        return _json({"events": rows})

    async def transitions(self, request: web.Request) -> web.Response:
        q = request.query
        limit, _ = _paging(q)
        rows = self.history.transitions(
            q.get("site", ""), q.get("host", ""), q.get("scope", ""), limit, _float(q, "before")
        )
        return _json({"transitions": rows})

    async def availability(self, request: web.Request) -> web.Response:
        q = request.query
        end = _time(q, "end") or self.clock()
        window = q.get("window", "30d")
        if window not in WINDOWS:
            raise BadRequest(f"window: expected one of {', '.join(WINDOWS)}, got {window!r}")
        start = _time(q, "start") or end - WINDOWS[window]
        if start >= end:
            raise BadRequest("start must be before end")
        target = _float(q, "target") or self.sla_target
        if not 0 < target < 100:
            raise BadRequest(f"target: expected a percentage between 0 and 100, got {target}")
        windows = self.history.maintenance()
        if q.get("host"):
            site, host = q.get("site", ""), q["host"]
            if not site:
                site = next((s for s, hn in self.fleet.hosts if hn == host), "")
            host_tl = self._timeline(site, host, "host", host, start, end)
            result = av.evaluate(host_tl, start, end, target, _spans(windows, site, host, ""))
            groups = {}
            for gid in self.history.items(site, host, "group", start, end):
                tl = av.overlay_offline(
                    self._timeline(site, host, "group", gid, start, end), host_tl
                )
                groups[gid] = av.evaluate(
                    tl, start, end, target, _spans(windows, site, host, gid)
                ).as_dict()
            return _json({"site": site, "host": host, **result.as_dict(), "groups": groups})
        limit, offset = _paging(q)
        total, page = self.history.hosts(q.get("site", ""), limit, offset)
        rows = []
        for site, host in page:
            tl = self._timeline(site, host, "host", host, start, end)
            d = av.evaluate(tl, start, end, target, _spans(windows, site, host, "")).as_dict()
            del d["segments"]
            rows.append({"site": site, "host": host, **d})
        return _json(
            {
                "start": start,
                "end": end,
                "target_pct": target,
                "total": total,
                "offset": offset,
                "limit": limit,
                "hosts": rows,
            }
        )

    def _timeline(
        self, site: str, host: str, scope: str, item: str, start: float, end: float
    ) -> list[av.Segment]:
        initial, changes = self.history.changes(site, host, scope, item, start, end)
        return av.timeline(initial, changes, start, end)

    async def maintenance_list(self, request: web.Request) -> web.Response:
        after = None if request.query.get("all") else self.clock()
        return _json(
            {"maintenance": [m.as_dict() for m in self.history.maintenance(end_after=after)]}
        )

    async def maintenance_add(self, request: web.Request) -> web.Response:
        body = await _json_object(request, {"site", "host", "group", "start", "end", "reason"})
        text = {k: body.get(k, "") for k in ("site", "host", "group", "reason")}
        for k, v in text.items():
            if not isinstance(v, str):
                raise BadRequest(f"{k}: expected a string")
        if not (text["site"] or text["host"]):
            raise BadRequest("a window needs a site or a host (or both)")
        start, end = _when(body, "start"), _when(body, "end")
        if end <= start:
            raise BadRequest("end must be after start")
        m = self.history.add_maintenance(
            text["site"],
            text["host"],
            text["group"],
            start,
            end,
            text["reason"],
            "api",
            self.clock(),
        )
        log.info("maintenance window %d added through the API: %s", m.id, m.as_dict())
        if self.alerting is not None:
            self.alerting.sync_maintenance()
        self.hub.send("maintenance", m.as_dict())
        return _json(m.as_dict(), status=201)

    async def maintenance_delete(self, request: web.Request) -> web.Response:
        try:
            mid = int(request.match_info["id"])
        except ValueError:
            raise BadRequest("id: expected an integer") from None
        if not self.history.delete_maintenance(mid):
            return _error(404, f"no maintenance window {mid}")
        log.info("maintenance window %d deleted through the API", mid)
        if self.alerting is not None:
            self.alerting.sync_maintenance()
        self.hub.send("maintenance", {"deleted": mid})
        return _json({"deleted": mid})

    # --- alerts and silences (when [alerts] is configured) --------------------------------
    def _engine(self):
        if self.alerting is None:
            raise NotConfigured
        return self.alerting.engine

    async def alerts(self, request: web.Request) -> web.Response:
        if self.alerting is None:
            return _json({"enabled": False, "alerts": [], "stats": {}, "sent": []})
        engine = self.alerting.engine
        try:
            sent_limit = int(request.query.get("sent", 50))
        except ValueError:
            raise BadRequest("sent: expected an integer") from None
        if not 0 <= sent_limit <= MAX_LIMIT:
            raise BadRequest(f"sent: 0 to {MAX_LIMIT}")
        sent = self.history.alerts(limit=sent_limit)
        return _json(
            {
                "enabled": True,
                "alerts": engine.alerts_json(),
                "stats": engine.stats(),
                "sent": sent,
            }
        )

    async def silences(self, request: web.Request) -> web.Response:
        if self.alerting is None:
            return _json({"enabled": False, "silences": []})
        every = bool(request.query.get("all"))
        return _json({"enabled": True, "silences": self.alerting.engine.silences_json(every)})

    async def silence_add(self, request: web.Request) -> web.Response:
        engine = self._engine()
        body = await _json_object(request, {"matchers", "start", "end", "comment", "created_by"})
        matchers = body.get("matchers", {})
        if not isinstance(matchers, dict):
            raise BadRequest("matchers: expected an object {label: glob or [globs]}")
        matchers = {k: v for k, v in matchers.items() if v not in ("", [])}
        if not matchers:
            raise BadRequest("matchers: a silence needs at least one label (site, host, ...)")
        text = {k: body.get(k, "") for k in ("comment", "created_by")}
        for k, v in text.items():
            if not isinstance(v, str):
                raise BadRequest(f"{k}: expected a string")
        start = _when(body, "start") if body.get("start") not in (None, "") else None
        end = _when(body, "end")
        try:
            silence = self.alerting.add_silence(
                matchers, end, start, text["created_by"] or "api", text["comment"]
            )
        except ValueError as e:
            raise BadRequest(str(e)) from None
        out = next(s for s in engine.silences_json(True) if s["id"] == silence.id)
        return _json(out, status=201)

    async def silence_delete(self, request: web.Request) -> web.Response:
        self._engine()  # 409 without [alerts]
        sid = request.match_info["id"]
        if sid.startswith("maintenance:"):
            return _error(
                409,
                f"{sid} is a maintenance window: DELETE /api/maintenance/{sid.split(':', 1)[1]}",
            )
        try:
            self.alerting.expire_silence(sid)
        except KeyError:
            return _error(404, f"no silence {sid}")
        return _json({"expired": sid})

    async def stats(self, request: web.Request) -> web.Response:
        return _json(
            {
                **self.ingest.stats(),
                "broker": self.broker() if self.broker else None,
                "sse_clients": len(self.hub.clients),
            }
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        q: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)
        self.hub.clients.add(q)
        try:
            hello = json.dumps({"broker": self.broker() if self.broker else None})
            await resp.write(f"retry: 2000\nevent: hello\ndata: {hello}\n\n".encode())
            while True:
                try:
                    frame = await asyncio.wait_for(q.get(), 15)
                except TimeoutError:
                    frame = ": keepalive\n\n"
                if frame is None:
                    break
                await resp.write(frame.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.clients.discard(q)
        return resp


class BadRequest(ValueError):
    pass


class NotConfigured(Exception):
    """Alert routing is off: no [alerts] section."""


async def _json_object(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    """The request's JSON object body, with only the ``allowed`` fields."""
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("expected a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    return body


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _json(data: Any, status: int = 200) -> web.Response:
    """A compact JSON response (no blanks after separators: a tenth less to send and parse)."""
    return web.json_response(data, status=status, dumps=_dumps)


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)


def _paging(q) -> tuple[int, int]:
    try:
        limit = int(q.get("limit", 100))
        offset = int(q.get("offset", 0))
    except ValueError:
        raise BadRequest("limit and offset: expected integers") from None
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise BadRequest(f"limit: 1 to {MAX_LIMIT}; offset: >= 0")
    return limit, offset


def _set(value: str | None) -> set[str]:
    return {v for v in (value or "").split(",") if v}


def _float(q, key: str) -> float | None:
    if key not in q or q[key] == "":
        return None
    try:
        return float(q[key])
    except ValueError:
        raise BadRequest(f"{key}: expected a number, got {q[key]!r}") from None


def _time(q, key: str) -> float | None:
    if key not in q or q[key] == "":
        return None
    return _when(dict(q), key)


def _when(body: dict[str, Any], key: str) -> float:
    """UNIX seconds, or an RFC 3339 date-time with an offset."""
    v = body.get(key)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            t = None
        if t is not None and t.tzinfo is not None:
            return t.timestamp()
    raise BadRequest(f"{key}: expected UNIX seconds or an RFC 3339 date-time with offset")


def _spans(
    windows: list[Maintenance], site: str, host: str, group: str
) -> list[tuple[float, float]]:
    return [(m.start, m.end) for m in windows if m.covers(site, host, group)]
