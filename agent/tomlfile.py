"""Reading a TOML configuration file with errors that say where: shared by the agent's and
the central service's configuration (both import it; it imports nothing of ours)."""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration problem, located: ``file: key: what was expected, what was found``."""

    def __init__(self, file: str | os.PathLike[str], key: str, message: str) -> None:
        self.file, self.key, self.message = str(file), key, message
        where = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(where + message)


def read(file: Path) -> dict[str, Any]:
    """The parsed document; every way a file can be unreadable is a ConfigError naming it."""
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file") from None
    except PermissionError:
        raise ConfigError(file, "", "permission denied") from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "", f"not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(file, "", f"not UTF-8 text: {e}") from None


def describe(value: Any) -> str:
    """A value as an error message shows it: its TOML kind and its text."""
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"


def table(file: Path, key: str, value: Any) -> dict[str, Any]:
    """``value`` if it is a table, else a ConfigError at ``key``."""
    if not isinstance(value, dict):
        raise ConfigError(file, key, f"expected a table, got {describe(value)}")
    return value


def typed(file: Path, where: str, t: type, value: Any, arrays: str = "an array of strings") -> Any:
    """``value`` checked against the option type ``t`` (bool, int, float, str or list of
    strings); numbers must be finite and >= 0, a float comes back as float. ``arrays`` is
    how an error names what a list option takes."""
    ok = (
        (t is bool and isinstance(value, bool))
        or (t is int and isinstance(value, int) and not isinstance(value, bool))
        or (t is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (t is str and isinstance(value, str))
        or (t is list and isinstance(value, list) and all(isinstance(v, str) for v in value))
    )
    if not ok:
        expected = {
            bool: "true or false",
            int: "an integer",
            float: "a number",
            str: "a string",
            list: arrays,
        }[t]
        raise ConfigError(file, where, f"expected {expected}, got {describe(value)}")
    if t is float:
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(file, where, f"expected a finite number >= 0, got {value!r}")
    if t is int and value < 0:
        raise ConfigError(file, where, f"expected an integer >= 0, got {value!r}")
    return value
