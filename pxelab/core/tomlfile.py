"""Reading pxelab's own TOML files (catalogs, tables, set files) with one kind of error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pxelab.core.errors import ConfigError


def read_toml(path: Path, what: str, missing_hint: str = "") -> dict[str, Any]:
    """The table in ``path``; a ConfigError naming ``what`` if it is missing or not TOML.

    ``missing_hint`` says what to do about a missing file.
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = f"; {missing_hint}" if missing_hint else ""
        raise ConfigError(f"{what} {path} not found{hint}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{what} {path} is not valid TOML: {error}") from None
