"""Reading a TOML configuration file with errors that say where: shared by the agent's and
the central service's configuration (both import it; it imports nothing of ours)."""

from __future__ import annotations

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
