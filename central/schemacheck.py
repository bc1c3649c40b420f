"""A small JSON Schema compiler for the contract's schemas: each schema becomes nested closures.

The general validator (``jsonschema``) spends about 1 ms on a group message and 19 ms on a
health document here, mostly resolving ``$ref`` through its registry on every call; the
ingest must take thousands of messages a second. The contract's schemas use a small part of
JSON Schema 2020-12, so this module compiles exactly that part, once, from the schema files
themselves (no second copy of the rules): ``type``, ``enum``, ``const``, ``properties``,
``required``, ``additionalProperties: false``, ``items``, ``minimum``, ``minLength``, ``$ref``
(to this file or a sibling file), ``if``/``then``/``else``, ``allOf``, ``anyOf``, ``not``.
Any other keyword raises ``ValueError`` when compiling, so a schema that starts to use one
fails the tests instead of being checked loosely. ``tests/test_central_schemacheck.py``
compares the verdicts with ``jsonschema`` on valid and mutated payloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# checker(value, path) -> None when valid, else a message saying where and why
Checker = Callable[[Any, str], str | None]

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default"}
)
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


_CLASSES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int,),
}


def _valid(value: Any, path: str) -> None:
    return None


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON means it: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return a == b


class Compiler:
    """Compiles the schemas of one directory; ``checker(name)`` for ``<name>.schema.json``."""

    def __init__(self, directory: Path) -> None:
        self.docs: dict[str, dict[str, Any]] = {
            p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.schema.json"))
        }
        self._memo: dict[tuple[str, str], Checker] = {}

    def checker(self, name: str) -> Checker:
        return self._ref(f"{name}.schema.json", "")

    def _ref(self, file: str, pointer: str) -> Checker:
        key = (file, pointer)
        if key not in self._memo:
            slot: list[Checker] = []
            self._memo[key] = lambda v, p: slot[0](v, p)  # placeholder for cycles
            node: Any = self.docs[file]
            for part in filter(None, pointer.split("/")):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            slot.append(self._compile(node, file))
            self._memo[key] = slot[0]
        return self._memo[key]

    def _compile(self, schema: dict[str, Any], file: str) -> Checker:
        checks: list[Checker] = []
        unknown = set(schema) - _ANNOTATIONS - set(_KEYWORDS)
        if unknown:
            raise ValueError(f"{file}: unsupported keyword(s) {sorted(unknown)}")
        for keyword in _KEYWORDS:
            if keyword in schema:
                built = _KEYWORDS[keyword](self, schema, file)
                if built is not None:
                    checks.append(built)

        if not checks:
            return _valid
        if len(checks) == 1:
            return checks[0]

        def check(value: Any, path: str) -> str | None:
            for c in checks:
                error = c(value, path)
                if error is not None:
                    return error
            return None

        return check

    # --- keywords ----------------------------------------------------------------------
    def _type(self, schema: dict[str, Any], file: str) -> Checker:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        for n in names:
            if n not in _TYPES:
                raise ValueError(f"{file}: unknown type {n!r}")
        # json.loads gives exactly these classes (bool is its own class, not int's)
        classes = frozenset(c for n in names for c in _CLASSES[n])
        whole_floats = "integer" in names and "number" not in names
        expected = " or ".join(names)

        def check(v: Any, p: str) -> str | None:
            if type(v) in classes or (whole_floats and type(v) is float and v.is_integer()):
                return None
            return f"{p or '(top)'}: {v!r:.60} is not of type {expected}"

        return check

    def _enum(self, schema: dict[str, Any], file: str) -> Checker:
        options = schema["enum"]
        simple = all(isinstance(o, str) or o is None for o in options)
        fast = frozenset(options) if simple else frozenset()

        def check(v: Any, p: str) -> str | None:
            if simple:
                if (type(v) is str or v is None) and v in fast:
                    return None
            elif any(_json_equal(v, o) for o in options):
                return None
            return f"{p or '(top)'}: {v!r:.60} is not one of {options}"

        return check

    def _const(self, schema: dict[str, Any], file: str) -> Checker:
        want = schema["const"]

        def check(v: Any, p: str) -> str | None:
            return None if _json_equal(v, want) else f"{p or '(top)'}: {want!r} was expected"

        return check

    def _properties(self, schema: dict[str, Any], file: str) -> Checker:
        props = {k: self._compile(s, file) for k, s in schema["properties"].items()}

        def check(v: Any, p: str) -> str | None:
            if not isinstance(v, dict):
                return None
            for key, sub in props.items():
                if key in v:
                    error = sub(v[key], f"{p}/{key}")
                    if error is not None:
                        return error
            return None

        return check

    def _required(self, schema: dict[str, Any], file: str) -> Checker:
        keys = schema["required"]

        def check(v: Any, p: str) -> str | None:
            if not isinstance(v, dict):
                return None
            missing = [k for k in keys if k not in v]
            return f"{p or '(top)'}: {missing[0]!r} is a required property" if missing else None

        return check

    def _additional(self, schema: dict[str, Any], file: str) -> Checker:
        if schema["additionalProperties"] is not False:
            raise ValueError(f"{file}: only additionalProperties: false is supported")
        allowed = frozenset(schema.get("properties", {}))

        def check(v: Any, p: str) -> str | None:
            if not isinstance(v, dict):
                return None
            extra = [k for k in v if k not in allowed]
            if extra:
                return f"{p or '(top)'}: additional properties are not allowed ({extra[0]!r:.60})"
            return None

        return check

    def _items(self, schema: dict[str, Any], file: str) -> Checker:
        sub = self._compile(schema["items"], file)

        def check(v: Any, p: str) -> str | None:
            if not isinstance(v, list):
                return None
            for i, item in enumerate(v):
                error = sub(item, f"{p}/{i}")
                if error is not None:
                    return error
            return None

        return check

    def _minimum(self, schema: dict[str, Any], file: str) -> Checker:
        low = schema["minimum"]

        def check(v: Any, p: str) -> str | None:
            if _TYPES["number"](v) and v < low:
                return f"{p or '(top)'}: {v!r} is less than the minimum of {low}"
            return None

        return check

    def _min_length(self, schema: dict[str, Any], file: str) -> Checker:
        low = schema["minLength"]

        def check(v: Any, p: str) -> str | None:
            if isinstance(v, str) and len(v) < low:
                return f"{p or '(top)'}: {v!r:.60} is shorter than {low}"
            return None

        return check

    def _refkw(self, schema: dict[str, Any], file: str) -> Checker:
        target, _, pointer = schema["$ref"].partition("#")
        target_file = Path(target).name if target else file
        if target_file not in self.docs:
            raise ValueError(f"{file}: $ref to {schema['$ref']!r}: no such schema file")
        return self._ref(target_file, pointer)

    def _if(self, schema: dict[str, Any], file: str) -> Checker:
        cond = self._compile(schema["if"], file)
        then = self._compile(schema["then"], file) if "then" in schema else None
        other = self._compile(schema["else"], file) if "else" in schema else None

        def check(v: Any, p: str) -> str | None:
            branch = then if cond(v, p) is None else other
            return None if branch is None else branch(v, p)

        return check

    def _all_of(self, schema: dict[str, Any], file: str) -> Checker:
        subs = [self._compile(s, file) for s in schema["allOf"]]

        def check(v: Any, p: str) -> str | None:
            for sub in subs:
                error = sub(v, p)
                if error is not None:
                    return error
            return None

        return check

    def _any_of(self, schema: dict[str, Any], file: str) -> Checker:
        subs = [self._compile(s, file) for s in schema["anyOf"]]

        def check(v: Any, p: str) -> str | None:
            errors = []
            for sub in subs:
                error = sub(v, p)
                if error is None:
                    return None
                errors.append(error)
            return f"{p or '(top)'}: {v!r:.60} matches none of the allowed shapes ({errors[0]})"

        return check

    def _not(self, schema: dict[str, Any], file: str) -> Checker:
        sub = self._compile(schema["not"], file)

        def check(v: Any, p: str) -> str | None:
            return (
                f"{p or '(top)'}: matches a shape that is not allowed"
                if sub(v, p) is None
                else None
            )

        return check


# keyword -> builder; "then"/"else" are handled by "if" (None builders only validate presence)
_KEYWORDS: dict[str, Callable[[Compiler, dict[str, Any], str], Checker | None]] = {
    "type": Compiler._type,
    "enum": Compiler._enum,
    "const": Compiler._const,
    "required": Compiler._required,
    "properties": Compiler._properties,
    "additionalProperties": Compiler._additional,
    "items": Compiler._items,
    "minimum": Compiler._minimum,
    "minLength": Compiler._min_length,
    "$ref": Compiler._refkw,
    "if": Compiler._if,
    "then": lambda c, s, f: None,
    "else": lambda c, s, f: None,
    "allOf": Compiler._all_of,
    "anyOf": Compiler._any_of,
    "not": Compiler._not,
}
