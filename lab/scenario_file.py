"""Scenario files: a run's scenario in TOML or YAML, read and checked field by field, and written back.

A file holds what `lab run`'s options hold, under the same names, grouped in sections (docs/config.md).
`load` checks every field and gives back values keyed by the name of the `lab run` parameter each one
sets; the command line takes them as its defaults, so a file's scenario reaches `RunOptions` through the
same checks and the same code as typed options, and an option given on the command line wins.

The bounds every number must keep live in lab/options.py, for the command line and files alike.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import BadInput
from lab.options import BOUNDS, RESERVED_ENV, Bounds

if TYPE_CHECKING:
    from lab.options import RunOptions


FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class Field:
    option: str  # the `lab run` parameter the field sets
    kind: type  # int, float (any number) or str
    choices: tuple[str, ...] = ()


# Section -> field -> what it sets. `strategy`, `params` and `versions` are read apart.
SECTIONS: dict[str, dict[str, Field]] = {
    "fleet": {
        "size": Field("fleet_size", int),
        "health_timeout": Field("health_timeout", float),
        "engine": Field("engine", str, ("docker", "swarm")),
    },
    "probe": {
        "rate": Field("rate", float),
        "mode": Field("mode", str, ("keepalive", "fresh")),
        "baseline": Field("baseline", float),
        "settle": Field("settle", float),
        "clients": Field("clients", int),
        "testers": Field("testers", int),
        "mix": Field("mix", str),
    },
    "proxy": {"next_upstream": Field("next_upstream", str)},
    "budgets": {"max_downtime_ms": Field("max_downtime_ms", float), "max_failed": Field("max_failed", int)},
}
TOP = ("strategy", "params", "fleet", "versions", "probe", "proxy", "budgets")
# A version's app: the fields of lab.model.AppSpec, each set by a `--v1-...`/`--v2-...` option.
APP_FIELDS: dict[str, Field] = {
    "image": Field("image", str),
    "port": Field("port", int),
    "health_path": Field("health_path", str),
    "serves": Field("serves", str),  # e.g. "get,post": what your image serves of a mix
}


def app_option(version: str, name: str) -> str:
    """The `lab run` parameter that sets field `name` of `version`'s app."""
    return f"{version}_{name}"


@dataclass(frozen=True)
class ScenarioFile:
    """A checked file: every value it gives, by the `lab run` parameter it sets."""

    path: str
    strategy: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # converted by the strategy's `coerce`
    options: dict[str, Any] = field(default_factory=dict)  # fleet_size, rate, scenario, v1_image ...
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # "v1"/"v2" -> environment
    fields: dict[str, str] = field(default_factory=dict)  # option -> the field that set it, for messages

    def defaults(self) -> dict[str, Any]:
        """Defaults for the command line's parameters: the strategy and every scalar option."""
        return {**({"strategy": self.strategy} if self.strategy else {}), **self.options}

    def env_pairs(self, version: str) -> list[str]:
        return [f"{k}={v}" for k, v in self.env.get(version, {}).items()]


class _Problem(Exception):
    """A field's problem; `load` adds the file's name and turns it into BadInput."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)


def fmt_of(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        shown = f"extension {path.suffix!r}" if path.suffix else "no extension"
        raise BadInput(f"{path}: {shown}: use .toml, .yaml or .yml") from None


def load(path: str | Path) -> ScenarioFile:
    """Read and check a scenario file; any problem is BadInput naming the file and the field."""
    if not str(path).strip():
        raise BadInput("--config is empty: give a scenario file (.toml, .yaml or .yml)")
    path = Path(path)
    if path.is_dir():  # before its extension: a folder has none, and that would be the wrong complaint
        raise BadInput(f"{path}: is a directory, not a scenario file")
    fmt = fmt_of(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a scenario file") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    data = parse(text, fmt, str(path))
    try:
        return check(data, str(path), table="table" if fmt == "toml" else "mapping")
    except _Problem as exc:
        raise BadInput(f"{path}: {exc}") from None


def parse(text: str, fmt: str, name: str) -> dict[str, Any]:
    """The file's top-level mapping; a syntax error names its line."""
    if fmt == "toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            # tomllib ends its message with "(at line L, column C)": put the place first, as YAML's is.
            match = re.search(r"\s*\(at (line \d+, column \d+|end of document)\)$", message)
            if match:
                message = f"{match.group(1)}: invalid TOML: {message[: match.start()]}"
            else:
                message = f"invalid TOML: {message}"
            raise BadInput(f"{name}: {message}") from None
    import yaml

    try:
        data = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "syntax error"
        raise BadInput(f"{name}: {where}invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{name}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:  # an empty file, as an empty TOML file: every value from the command line
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{name}: expected a mapping of sections at the top, got {_kind(data)}")
    return data


@functools.cache
def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """PyYAML keeps the last of two equal keys; TOML refuses them, and so does this."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):  # a list or a map as a key: SafeLoader's own message
                    continue
                if key in seen:
                    raise yaml.MarkedYAMLError(
                        problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return Loader


def check(data: Mapping[str, Any], name: str = "", table: str = "table") -> ScenarioFile:
    """Check a parsed file. Raises _Problem("field: message")."""
    from lab import strategies

    _known_keys(data, TOP, "")
    options: dict[str, Any] = {}
    fields: dict[str, str] = {}

    strategy = data.get("strategy")
    if strategy is not None:
        strategy = _typed("strategy", strategy, str)
        if strategy not in strategies.REGISTRY:
            raise _Problem("strategy", f"unknown strategy {strategy!r}{_hint(strategy, strategies.REGISTRY)}")

    for section, known in SECTIONS.items():
        if section not in data:
            continue
        values = _section(section, data[section], table)
        _known_keys(values, known, section)
        for key, value in values.items():
            spec = known[key]
            where = f"{section}.{key}"
            options[spec.option] = _value(where, value, spec, BOUNDS.get(spec.option))
            fields[spec.option] = where

    env: dict[str, dict[str, str]] = {}
    versions = _section("versions", data.get("versions", {}), table)
    _known_keys(versions, VERSIONS, "versions")
    for version, raw in versions.items():
        prefix = f"versions.{version}"
        given = _section(prefix, raw, table)
        _known_keys(given, [*APP_FIELDS, "env", *(["scenario"] if version == "v2" else [])], prefix)
        for key, value in given.items():
            if key == "env":
                env[version] = _env(f"{prefix}.env", value, table)
            elif key == "scenario":
                options["scenario"] = _scenario(f"{prefix}.scenario", value)
                fields["scenario"] = f"{prefix}.scenario"
            else:
                option = app_option(version, key)
                options[option] = _app_value(f"{prefix}.{key}", key, value)
                fields[option] = f"{prefix}.{key}"
        # A port, health path or kinds served describe an image of one's own; the sample app's are fixed.
        for key in ("port", "health_path", "serves"):
            if key in given and "image" not in given:
                raise _Problem(f"{prefix}.{key}", f"describes your own image: give {prefix}.image too")

    if "mix" in options:
        from lab.options import parse_mix

        try:
            parse_mix(options["mix"])
        except BadInput as exc:
            raise _Problem("probe.mix", str(exc).split(": ", 1)[-1]) from None
    if options.get("testers", 0) > options.get("clients", options.get("testers", 0)):
        raise _Problem(
            "probe.testers", f"more than probe.clients ({options['clients']}): testers are some of them"
        )

    if "next_upstream" in options:
        from lab.targets.fleet.nginx import ProxySettings

        try:
            ProxySettings(next_upstream=options["next_upstream"])
        except ValueError as exc:
            raise _Problem("proxy.next_upstream", str(exc)) from None

    params: dict[str, Any] = {}
    if "params" in data:
        raw_params = _section("params", data["params"], table)
        if raw_params and strategy is None:
            raise _Problem("params", "parameters need a strategy: add strategy = NAME at the top")
        if strategy is not None:
            params = _params(strategies.get(strategy), raw_params)
    return ScenarioFile(name, strategy, params, options, env, fields)


def _params(strategy: Any, raw: Mapping[str, Any]) -> dict[str, Any]:
    known = strategy.defaults()
    for key, value in raw.items():
        if key not in known:
            hint = _hint(key, known) or f" (its parameters: {', '.join(known) or 'none'})"
            raise _Problem(f"params.{key}", f"{strategy.name} has no such parameter{hint}")
        try:  # one at a time first, so a message can name the parameter
            strategy.coerce({key: value})
        except ValueError as exc:
            raise _Problem(f"params.{key}", str(exc)) from None
    try:
        return dict(strategy.coerce(dict(raw)))
    except ValueError as exc:
        raise _Problem("params", str(exc)) from None


def _app_value(where: str, key: str, value: Any) -> Any:
    from lab.model import AppSpec

    value = _typed(where, value, APP_FIELDS[key].kind)
    spec: dict[str, Any] = {key: tuple(k.strip() for k in value.split(",")) if key == "serves" else value}
    try:  # the app's own rules: an image name, a port, a path nginx can carry, kinds it knows
        AppSpec(**spec)
    except ValueError as exc:
        raise _Problem(where, str(exc)) from None
    return value


def _scenario(where: str, value: Any) -> str:
    from lab.scenarios import SCENARIOS

    name = _typed(where, value, str)
    if name not in SCENARIOS:
        known = ", ".join(SCENARIOS)
        raise _Problem(where, f"unknown scenario {name!r}{_hint(name, SCENARIOS)} (known: {known})")
    return name


def _env(where: str, value: Any, table: str) -> dict[str, str]:
    values = _section(where, value, table)
    env: dict[str, str] = {}
    for key, val in values.items():
        if not key or "=" in key or key != key.strip() or "\0" in key:
            raise _Problem(f"{where}.{json.dumps(key)}", "not a variable name")
        if key in RESERVED_ENV:
            raise _Problem(f"{where}.{key}", "set by the lab itself, a file cannot set it")
        # A number is a fine value (APP_FAIL_RATE = 0.05); a boolean is not: `true` would reach the app
        # as "True", so it has to be written as the app reads it.
        if isinstance(val, bool) or not isinstance(val, str | int | float):
            raise _Problem(f"{where}.{key}", f"expected a string, got {_shown(val)}")
        env[key] = val if isinstance(val, str) else repr(val)
    return env


def _value(where: str, value: Any, spec: Field, bounds: Bounds | None) -> Any:
    value = _typed(where, value, spec.kind)
    if spec.choices and value not in spec.choices:
        raise _Problem(where, f"must be one of {', '.join(spec.choices)}, got {_shown(value)}")
    if bounds is not None:
        problem = bounds.problem(value)
        if problem:
            raise _Problem(where, problem)
    return value


def _typed(where: str, value: Any, kind: type) -> Any:
    if kind is str:
        if isinstance(value, str):
            return value
        raise _Problem(where, f"expected a string, got {_shown(value)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        # PyYAML reads YAML 1.1, where 1e3 (no dot, no sign) is text; reading it as a number everywhere would
        # also turn an env value like a short commit id (5e1234) into one, so the message says how instead.
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value):
            hint = " (text, not a number: no quotes; in YAML an exponent needs a dot and a sign, 1.0e+3)"
        raise _Problem(
            where, f"expected {'a whole number' if kind is int else 'a number'}, got {_shown(value)}{hint}"
        )
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise _Problem(where, f"expected a whole number, got {_shown(value)}")
            return int(value)
        return value
    try:
        return float(value)
    except OverflowError:
        raise _Problem(where, f"{value} is too large") from None


def _section(where: str, value: Any, table: str) -> dict[str, Any]:
    if value is None:  # YAML's `fleet:` with nothing under it
        return {}
    if not isinstance(value, dict):
        raise _Problem(where, f"expected a {table}, got {_shown(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _Problem(f"{where}", f"keys must be strings, got {_shown(key)}")
    return value


def _known_keys(values: Mapping[str, Any], known: Any, where: str) -> None:
    for key in values:
        if not isinstance(key, str):
            raise _Problem(where, f"keys must be strings, got {_shown(key)}")
        if key not in known:
            hint = _hint(key, known) or f" (fields here: {', '.join(known)})"
            raise _Problem(f"{where}.{key}" if where else key, f"unknown field{hint}")


def _hint(word: str, known: Any) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _shown(value: Any) -> str:
    """A value as the file would spell it, near enough: "fast", 4.5, true, null, [1, 2]."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # a NaN inside a list
        return repr(value)


# ---------------------------------------------------------------------------------------------------
# Writing


def document(
    config: RunOptions, *, max_downtime_ms: float | None = None, max_failed: int | None = None
) -> dict[str, Any]:
    """The file for a run's config: everything `load` reads back to the same config."""
    from lab.scenarios import scenario

    doc: dict[str, Any] = {"strategy": config.strategy}
    params = {k: _plain(v) for k, v in config.params.items() if v is not None}
    if params:
        doc["params"] = params
    doc["fleet"] = {
        "size": config.fleet_size,
        "health_timeout": _number(config.health_timeout_s),
        "engine": config.engine,
    }
    release = scenario(config.scenario).v2_env
    versions: dict[str, dict[str, Any]] = {}
    for version, env in (("v1", config.v1_env), ("v2", config.v2_env)):
        spec: dict[str, Any] = app_fields(config, version)
        if version == "v2":
            spec["scenario"] = config.scenario
            # What the named release sets is written once, as its name.
            env = {k: v for k, v in env.items() if release.get(k) != v}
        if env:
            spec["env"] = dict(env)
        if spec:
            versions[version] = spec
    doc["versions"] = versions
    from lab.options import mix_text

    doc["probe"] = {
        "rate": _number(config.rate),
        "mode": config.mode,
        "baseline": _number(config.baseline_s),
        "settle": _number(config.settle_s),
        "clients": config.clients,
        "testers": config.testers,
        "mix": mix_text(config.mix),
    }
    doc["proxy"] = {"next_upstream": config.proxy.next_upstream}
    budgets = {"max_downtime_ms": _number(max_downtime_ms), "max_failed": max_failed}
    if any(v is not None for v in budgets.values()):
        doc["budgets"] = {k: v for k, v in budgets.items() if v is not None}
    return doc


def app_fields(config: RunOptions, version: str) -> dict[str, Any]:
    """The fields of a version's app that differ from the sample app's."""
    app = getattr(config, f"{version}_app", None)
    if app is None:  # a lab without custom images
        return {}
    default = type(app)()
    fields = {
        name: value
        for name in APP_FIELDS
        if (value := getattr(app, name)) != getattr(default, name) and value is not None
    }
    if "serves" in fields:
        fields["serves"] = ",".join(fields["serves"])
    return fields


def dumps(doc: Mapping[str, Any], fmt: str) -> str:
    header = "# deploy lab scenario (docs/config.md); run it with `lab run --config FILE`\n"
    if fmt == "toml":
        import tomli_w

        return header + tomli_w.dumps(doc)
    import yaml

    return header + yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True)


def save(
    path: str | Path,
    config: RunOptions,
    *,
    max_downtime_ms: float | None = None,
    max_failed: int | None = None,
) -> None:
    path = Path(path)
    text = dumps(document(config, max_downtime_ms=max_downtime_ms, max_failed=max_failed), fmt_of(path))
    try:
        path.write_text(text)
    except OSError as exc:
        raise BadInput(f"{path}: cannot write: {exc.strerror or exc}") from None


def _plain(value: Any) -> Any:
    """A strategy parameter as TOML and YAML can hold it and `coerce` reads it back."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)  # Batch and its kind: their text is what their `parse` reads


def _number(value: float | None) -> float | int | None:
    """200.0 as 200: the file reads as a person would write it, and loads back to the same float."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value
