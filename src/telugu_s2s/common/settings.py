"""Reading settings from the environment with errors that name the variable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

N = TypeVar("N", int, float)


class SettingError(ValueError):
    """A setting a service cannot run with; the message names the flag or variable."""


def env_number(env: Mapping[str, str], name: str, cast: type[N], default: N | None) -> N | None:
    """A number from the environment (unset or empty: `default`)."""
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return cast(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a valid {cast.__name__}") from None
