"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json.

A test checks that every route the web app serves under /api/ is described here and that
nothing described here is missing from the app.
"""

from __future__ import annotations

from typing import Any

from agent import __version__


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _p(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


PAGING = [
    _q(
        "limit",
        "Page size, 1 to 1000 (default 100).",
        {"type": "integer", "minimum": 1, "maximum": 1000},
    ),
    _q("offset", "Items to skip (default 0).", {"type": "integer", "minimum": 0}),
]
ERRORS = {
    "400": _ok(
        "Bad request: the error says which parameter.", {"$ref": "#/components/schemas/Error"}
    ),
    "401": _ok("A bearer token is required.", {"$ref": "#/components/schemas/Error"}),
}
STATE = {"enum": ["redundant", "degraded", "failed", "unknown", "offline", None]}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hotspare central",
            "version": __version__,
            "description": (
                "Fleet state, history, availability, maintenance windows, alerts and silences of the hotspare "
                "central service. Read-only endpoints are open on a loopback listen address "
                "(or with public_read); changes need the bearer token of [central] token_file. "
                "Times are UNIX seconds."
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}},
                    "required": ["error"],
                },
                "FleetSummary": {
                    "type": "object",
                    "description": "Counts per state over every host (of the site): hosts by"
                    " their state, groups by the state the matrix shows (offline while the host"
                    " is offline).",
                    "properties": {
                        "hosts": {"type": "integer"},
                        "states": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "groups": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": {"type": "integer"},
                            },
                        },
                    },
                },
                "HostSummary": {
                    "type": "object",
                    "properties": {
                        "site": {"type": "string"},
                        "host": {"type": "string"},
                        "state": STATE,
                        "online": {"type": ["boolean", "null"]},
                        "offline_cause": {
                            "enum": [
                                "last_will",
                                "clean_stop",
                                "missed_heartbeats",
                                "retained_offline",
                                None,
                            ]
                        },
                        "offline_since": {"type": ["number", "null"]},
                        "last_heard": {"type": ["number", "null"]},
                        "role": {"enum": ["primary", "standby", "none", None]},
                        "groups": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "description": "group id -> group state",
                        },
                    },
                },
                "Availability": {
                    "type": "object",
                    "description": "Uptime (failed or offline = down), exposure (degraded), "
                    "outage minutes and the error budget over a window; maintenance excluded.",
                    "properties": {
                        "start": {"type": "number"},
                        "end": {"type": "number"},
                        "target_pct": {"type": "number"},
                        "uptime_pct": {"type": ["number", "null"]},
                        "exposure_pct": {"type": ["number", "null"]},
                        "counted_s": {"type": "number"},
                        "maintenance_s": {"type": "number"},
                        "no_data_s": {"type": "number"},
                        "down_s": {"type": "number"},
                        "outage_minutes": {"type": "number"},
                        "exposure_s": {"type": "number"},
                        "exposure_minutes": {"type": "number"},
                        "unknown_s": {"type": "number"},
                        "outages": {"type": "integer"},
                        "budget_minutes": {"type": "number"},
                        "budget_left_minutes": {"type": "number"},
                        "segments": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Maintenance": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "site": {"type": "string"},
                        "host": {"type": "string"},
                        "group": {"type": "string"},
                        "start": {"type": "number"},
                        "end": {"type": "number"},
                        "reason": {"type": "string"},
                        "source": {"enum": ["config", "api"]},
                    },
                },
                "NewMaintenance": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["start", "end"],
                    "properties": {
                        "site": {"type": "string", "description": "Empty: every site."},
                        "host": {"type": "string", "description": "Empty: every host."},
                        "group": {
                            "type": "string",
                            "description": "Empty: the host and all groups.",
                        },
                        "start": {
                            "type": ["number", "string"],
                            "description": "UNIX seconds or RFC 3339 with offset.",
                        },
                        "end": {"type": ["number", "string"]},
                        "reason": {"type": "string"},
                    },
                },
                "Alert": {
                    "type": "object",
                    "description": "A firing alert (one per host and group; docs/alerts.md).",
                    "properties": {
                        "id": {"type": "string", "description": "Stable over restarts."},
                        "key": {"type": "string", "description": "site/host/group/<id> or host"},
                        "status": {"type": "string", "enum": ["firing", "resolved"]},
                        "labels": {
                            "type": "object",
                            "description": "site, host, group, kind, severity, state",
                            "additionalProperties": {"type": "string"},
                        },
                        "summary": {"type": "string"},
                        "detail": {"type": "string"},
                        "startsAt": {"type": "string", "format": "date-time"},
                        "flapping": {"type": "boolean"},
                        "silencedBy": {"type": "array", "items": {"type": "string"}},
                        "hostOffline": {
                            "type": "boolean",
                            "description": "Held back: its host's offline alert covers it.",
                        },
                    },
                },
                "Silence": {
                    "type": "object",
                    "properties": {
                        "id": {
                            "type": "string",
                            "description": "maintenance:<id> for a maintenance window.",
                        },
                        "kind": {"type": "string", "enum": ["silence", "maintenance"]},
                        "matchers": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        },
                        "startsAt": {"type": "string", "format": "date-time"},
                        "endsAt": {"type": "string", "format": "date-time"},
                        "active": {"type": "boolean"},
                        "createdBy": {"type": "string"},
                        "comment": {"type": "string"},
                    },
                },
                "NewSilence": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["matchers", "end"],
                    "properties": {
                        "matchers": {
                            "type": "object",
                            "description": "Label (site, host, group, kind, severity) -> a glob "
                            "or an array of globs; at least one.",
                            "additionalProperties": {
                                "type": ["string", "array"],
                                "items": {"type": "string"},
                            },
                        },
                        "start": {
                            "type": ["number", "string"],
                            "description": "UNIX seconds or RFC 3339 with offset; default: now.",
                        },
                        "end": {"type": ["number", "string"]},
                        "comment": {"type": "string"},
                        "created_by": {"type": "string"},
                    },
                },
            },
        },
        "paths": {
            "/api/openapi.json": {
                "get": {"summary": "This document.", "responses": {"200": _ok("OpenAPI 3.1")}}
            },
            "/api/fleet": {
                "get": {
                    "summary": "Hosts with their state and their groups' states, filtered and paged on the server.",
                    "parameters": [
                        _q("site", "Only this site."),
                        _q(
                            "state",
                            "Comma-separated host states (redundant, degraded, failed, unknown, offline, none).",
                        ),
                        _q("q", "Host name contains this (case-insensitive)."),
                        _q("group", "Only hosts that have this group id."),
                        _q(
                            "sort",
                            "name (site, host) or state (worst first).",
                            {"enum": ["name", "state"]},
                        ),
                        *PAGING,
                    ],
                    "responses": {
                        "200": _ok(
                            "A page of hosts; counts per state of every match; the group ids on this page.",
                            {
                                "type": "object",
                                "properties": {
                                    "total": {"type": "integer"},
                                    "offset": {"type": "integer"},
                                    "limit": {"type": "integer"},
                                    "counts": {
                                        "type": "object",
                                        "additionalProperties": {"type": "integer"},
                                    },
                                    "sites": {"type": "array", "items": {"type": "string"}},
                                    "groups": {"type": "array", "items": {"type": "string"}},
                                    "summary": {"$ref": "#/components/schemas/FleetSummary"},
                                    "hosts": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/HostSummary"},
                                    },
                                },
                            },
                        ),
                        **ERRORS,
                    },
                }
            },
            "/api/summary": {
                "get": {
                    "summary": "The fleet's summary: hosts and groups per state, kept up to date"
                    " as messages arrive (not counted per request); live as the SSE event"
                    " `summary`.",
                    "parameters": [_q("site", "Only this site.")],
                    "responses": {
                        "200": _ok(
                            "The summary of the fleet or of one site.",
                            {
                                "allOf": [
                                    {"$ref": "#/components/schemas/FleetSummary"},
                                    {
                                        "type": "object",
                                        "properties": {
                                            "site": {"type": ["string", "null"]},
                                            "sites": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                        },
                                    },
                                ]
                            },
                        ),
                        **ERRORS,
                    },
                }
            },
            "/api/groups": {
                "get": {
                    "summary": "Every redundancy group of the fleet, filtered and paged.",
                    "parameters": [
                        _q("site", "Only this site."),
                        _q("state", "Comma-separated group states."),
                        _q("kind", "Group kind (power, cooling, raid, bond, switches, custom)."),
                        *PAGING,
                    ],
                    "responses": {
                        "200": _ok(
                            "A page of groups (the contract's group object plus site, host, host_online)."
                        ),
                        **ERRORS,
                    },
                }
            },
            "/api/hosts/{site}/{host}": {
                "get": {
                    "summary": "One host: groups with their members' readings, components, collectors, recent transitions and events.",
                    "parameters": [_p("site", "The host's site."), _p("host", "The host name.")],
                    "responses": {
                        "200": _ok("The host."),
                        "404": _ok("No such host.", {"$ref": "#/components/schemas/Error"}),
                        **ERRORS,
                    },
                }
            },
            "/api/hosts/{site}/{host}/commands": {
                "post": {
                    "summary": "Send the host's agent a signed promote, demote or failback (as `hotspare promote` does, signed with the [commands] key) and wait for its answer: the command event (accepted or rejected with the reason), then, once accepted, the promotion events until a final one.",
                    "security": [{"bearer": []}],
                    "parameters": [_p("site", "The host's site."), _p("host", "The host name.")],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "verb": {"enum": ["promote", "demote", "failback"]},
                                        "policy": {
                                            "type": "string",
                                            "description": "The policy to act on; empty: the agent's only fitting one.",
                                        },
                                    },
                                    "required": ["verb"],
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _ok(
                            "The agent answered: {target, verb, nonce, command, promotion: [...], error}; error is set when no final result came in time."
                        ),
                        "404": _ok("No such host.", {"$ref": "#/components/schemas/Error"}),
                        "409": _ok(
                            "Commands are off (no [commands] section).",
                            {"$ref": "#/components/schemas/Error"},
                        ),
                        "503": _ok("The service is not connected to the broker: nothing was sent."),
                        "504": _ok(
                            "Sent, but the agent did not answer in time (with a shared subscription the answer may reach another instance)."
                        ),
                        **ERRORS,
                    },
                }
            },
            "/api/events": {
                "get": {
                    "summary": "Agent events (transitions, agent events, promotions, action results) as received, newest first.",
                    "parameters": [
                        _q("site", "Only this site."),
                        _q("host", "Only this host."),
                        _q("before", "Only events before this time (paging).", {"type": "number"}),
                        PAGING[0],
                    ],
                    "responses": {"200": _ok("{events: [...]}"), **ERRORS},
                }
            },
            "/api/transitions": {
                "get": {
                    "summary": "State changes the central service recorded (groups, hosts, offline), newest first.",
                    "parameters": [
                        _q("site", "Only this site."),
                        _q("host", "Only this host."),
                        _q("scope", "host or group.", {"enum": ["host", "group"]}),
                        _q("before", "Only transitions before this time.", {"type": "number"}),
                        PAGING[0],
                    ],
                    "responses": {"200": _ok("{transitions: [...]}"), **ERRORS},
                }
            },
            "/api/availability": {
                "get": {
                    "summary": "Availability and exposure: one host and each of its groups (with segments for a chart), or a page of hosts.",
                    "parameters": [
                        _q("site", "The host's site; without host: only this site."),
                        _q("host", "One host: its own figures and each group's."),
                        _q(
                            "window",
                            "Window length ending at end (default 30d).",
                            {"enum": ["1h", "24h", "7d", "30d", "month"]},
                        ),
                        _q("start", "Window start (UNIX seconds or RFC 3339); overrides window."),
                        _q("end", "Window end (default: now)."),
                        _q(
                            "target",
                            "SLA target in percent (default [central] sla_target).",
                            {"type": "number"},
                        ),
                        *PAGING,
                    ],
                    "responses": {
                        "200": _ok("Availability.", {"$ref": "#/components/schemas/Availability"}),
                        **ERRORS,
                    },
                }
            },
            "/api/maintenance": {
                "get": {
                    "summary": "Maintenance windows that have not ended (all=1: every one).",
                    "parameters": [_q("all", "1: include past windows.")],
                    "responses": {"200": _ok("{maintenance: [...]}"), **ERRORS},
                },
                "post": {
                    "summary": "Declare a maintenance window (excluded from availability).",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/NewMaintenance"}
                            }
                        },
                    },
                    "responses": {
                        "201": _ok("Created.", {"$ref": "#/components/schemas/Maintenance"}),
                        "403": _ok(
                            "No token_file configured: the API is read-only.",
                            {"$ref": "#/components/schemas/Error"},
                        ),
                        **ERRORS,
                    },
                },
            },
            "/api/maintenance/{id}": {
                "delete": {
                    "summary": "Delete a maintenance window.",
                    "security": [{"bearer": []}],
                    "parameters": [_p("id", "The window's id.")],
                    "responses": {
                        "200": _ok("Deleted."),
                        "404": _ok("No such window.", {"$ref": "#/components/schemas/Error"}),
                        **ERRORS,
                    },
                }
            },
            "/api/alerts": {
                "get": {
                    "summary": "The firing alerts, the alert routing's counters and the "
                    "latest notifications sent (from the history; enabled false: no [alerts]).",
                    "parameters": [_q("sent", "How many recent notifications (default 50).")],
                    "responses": {
                        "200": _ok(
                            "{enabled, alerts: [...], stats}",
                            {
                                "type": "object",
                                "properties": {
                                    "enabled": {"type": "boolean"},
                                    "alerts": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Alert"},
                                    },
                                    "stats": {"type": "object"},
                                    "sent": {
                                        "type": "array",
                                        "items": {"type": "object"},
                                        "description": "ts, site, host, id, status, "
                                        "receiver, detail; newest first",
                                    },
                                },
                            },
                        ),
                        **ERRORS,
                    },
                }
            },
            "/api/silences": {
                "get": {
                    "summary": "Silences and maintenance windows not yet over (all=1: also "
                    "those that ended within a day).",
                    "parameters": [_q("all", "1: include ended ones.")],
                    "responses": {
                        "200": _ok(
                            "{enabled, silences: [...]}",
                            {
                                "type": "object",
                                "properties": {
                                    "enabled": {"type": "boolean"},
                                    "silences": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Silence"},
                                    },
                                },
                            },
                        ),
                        **ERRORS,
                    },
                },
                "post": {
                    "summary": "Add a silence: matching alerts send nothing until it ends.",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/NewSilence"}
                            }
                        },
                    },
                    "responses": {
                        "201": _ok("Created.", {"$ref": "#/components/schemas/Silence"}),
                        "409": _ok(
                            "Alert routing is off (no [alerts] section).",
                            {"$ref": "#/components/schemas/Error"},
                        ),
                        **ERRORS,
                    },
                },
            },
            "/api/silences/{id}": {
                "delete": {
                    "summary": "Expire a silence now (maintenance windows: /api/maintenance/{id}).",
                    "security": [{"bearer": []}],
                    "parameters": [_p("id", "The silence's id.")],
                    "responses": {
                        "200": _ok("Expired."),
                        "404": _ok("No such silence.", {"$ref": "#/components/schemas/Error"}),
                        "409": _ok(
                            "A maintenance window, or alert routing is off.",
                            {"$ref": "#/components/schemas/Error"},
                        ),
                        **ERRORS,
                    },
                }
            },
            "/api/stats": {
                "get": {
                    "summary": "Ingest counters: received, accepted, rejected by reason, transitions,"
                    " events; broker: the service's MQTT connection ({url, connected, since,"
                    " connects, last_error: {at, why}}).",
                    "responses": {"200": _ok("Counters."), **ERRORS},
                }
            },
            "/api/stream": {
                "get": {
                    "summary": "Server-sent events: hello ({broker}, first), hosts (changed host"
                    " summaries), summary ({fleet, sites: the summaries of the sites that"
                    " changed}), transition, maintenance, alerts ({alerts, silences}), broker"
                    " (the service's MQTT connection, at each connect and loss).",
                    "responses": {
                        "200": {
                            "description": "text/event-stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
    }
