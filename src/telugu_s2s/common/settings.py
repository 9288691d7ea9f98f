"""One way to configure every process: a frozen dataclass whose fields are its settings.

Every service (gateway, codec, context, web) and the local stack describe their settings the
same way, as fields of one frozen dataclass, and build it once at the entry point:

- `load(cls, prefix, argv, env)`: defaults < environment variables (`prefix` + the field's
  name in upper case, e.g. `TS2S_CODEC_MAX_BATCH`) < command-line flags (`--max-batch`);
- `to_env(obj, prefix)`: the variables that make `load` rebuild `obj` (fields left at their
  default are left out): how a launcher hands a configuration to a child process;
- `add_flags(parser, cls)` and `from_args(cls, namespace)`: a configuration's settings as the
  flags of a CLI (`telugu-s2s up` takes the stack's this way).

A field may carry `setting(...)` metadata (help, another variable or flag name, a parser for a
type the default does not tell, choices, `env_only` for secrets). A field made with `derived()`
is not read from flags or the environment: the entry point computes it (TLS objects, a
password read from a file) and passes it to `load` as `extra`.

A value that does not parse is a `SettingError` naming the variable or flag: the entry points
print it as one line and exit 2 (`common/entry.py`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")

_KEY = "telugu_s2s.setting"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingError(ValueError):
    """A setting a service cannot run with; the message names the flag or variable."""


@dataclass(frozen=True)
class Setting:
    help: str = ""
    env: str = ""  # the variable's full name, when it is not prefix + NAME
    flag: str = ""  # the flag, when it is not --name
    parse: Callable[[str], Any] | None = None  # default: the type of the field's default
    choices: tuple[str, ...] = ()
    env_only: bool = False  # secrets: never a flag (it would show in `ps`)
    derived: bool = False  # computed by the entry point, never read


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, **spec: Any) -> Any:
    """A dataclass field that is a setting, with `Setting` options."""
    meta = {_KEY: Setting(**spec)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def derived(default: Any = None, **kw: Any) -> Any:
    """A dataclass field that the entry point computes (passed to `load` as `extra`)."""
    return field(default=default, metadata={_KEY: Setting(derived=True)}, **kw)


def parse_bool(text: str) -> bool:
    v = text.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(text)


def _spec(f: Field) -> Setting:
    return f.metadata.get(_KEY) or Setting()


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise TypeError(f"setting {f.name} has no default")


def _parser_of(f: Field) -> Callable[[str], Any]:
    spec = _spec(f)
    if spec.parse is not None:
        return spec.parse
    default = _default(f)
    if default is None:
        raise TypeError(f"setting {f.name} defaults to None: give it setting(parse=...)")
    if isinstance(default, bool):
        return parse_bool
    if isinstance(default, Path):
        return Path
    return type(default)


def _kind(parse: Callable[[str], Any]) -> str:
    return {int: "an integer", float: "a number", parse_bool: "1 or 0 (true/false)"}.get(parse, "valid")


def settings_of(cls: type) -> list[Field]:
    """The fields of `cls` that are read from flags and the environment."""
    return [f for f in fields(cls) if not _spec(f).derived]


def env_name(f: Field, prefix: str) -> str:
    return _spec(f).env or f"{prefix}{f.name.upper()}"


def flag_name(f: Field) -> str:
    return _spec(f).flag or "--" + f.name.replace("_", "-")


def _from_env(f: Field, prefix: str | None, env: Mapping[str, str]) -> Any:
    if prefix is None:
        return _default(f)
    name = env_name(f, prefix)
    raw = env.get(name, "")
    if raw == "":
        return _default(f)
    parse = _parser_of(f)
    try:
        return parse(raw.strip())
    except ValueError:
        raise SettingError(f"{name}={raw!r}: must be {_kind(parse)}") from None


def _add_flag(group: Any, f: Field, default: Any, prefix: str | None) -> None:
    spec = _spec(f)
    where = f"env {env_name(f, prefix)}, " if prefix is not None else ""
    text = f"{spec.help} ({where}default {_default(f)})".lstrip()
    parse = _parser_of(f)
    kw: dict[str, Any] = {"dest": f.name, "default": default, "help": text}
    if spec.choices:
        kw["choices"] = spec.choices
    if parse is parse_bool:
        group.add_argument(flag_name(f), action=argparse.BooleanOptionalAction, **kw)
    else:
        group.add_argument(flag_name(f), type=parse, **kw)


def add_flags(
    parser: Any, cls: type, prefix: str | None = None, env: Mapping[str, str] | None = None, skip: Sequence[str] = ()
) -> None:
    """Add a flag for every setting of `cls` (not `env_only` ones, not `skip`); with `prefix`,
    each flag's default is read from its environment variable first."""
    env = os.environ if env is None else env
    for f in settings_of(cls):
        if f.name not in skip and not _spec(f).env_only:
            _add_flag(parser, f, _from_env(f, prefix, env), prefix)


def from_args(cls: type[C], args: argparse.Namespace, **extra: Any) -> C:
    """Build `cls` from a namespace that `add_flags` filled (missing names keep their default)."""
    values = {f.name: getattr(args, f.name) for f in settings_of(cls) if hasattr(args, f.name)}
    return cls(**values, **extra)


def load(
    cls: type[C],
    prefix: str,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    prog: str = "",
    description: str = "",
    extra: Mapping[str, Any] | None = None,
) -> C:
    """Defaults < `prefix`* environment variables < flags in `argv` (None: no flags)."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog=prog or None, description=description)
    add_flags(parser, cls, prefix, env)
    args = parser.parse_args(list(argv) if argv is not None else [])
    values = {
        f.name: getattr(args, f.name) if hasattr(args, f.name) else _from_env(f, prefix, env) for f in settings_of(cls)
    }
    return cls(**values, **dict(extra or {}))


def to_env(obj: Any, prefix: str) -> dict[str, str]:
    """The variables that make `load(type(obj), prefix)` rebuild `obj`'s settings."""
    out: dict[str, str] = {}
    for f in settings_of(type(obj)):
        value = getattr(obj, f.name)
        if value == _default(f) or value is None:
            continue
        out[env_name(f, prefix)] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return out
