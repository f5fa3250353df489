"""YAML loading that remembers line numbers, so configuration errors can name the line to fix."""

import re
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A configuration file is wrong: the message names the file, the line and the fix."""


class LineDict(dict):
    """A YAML mapping; `line` is where it starts, `key_lines[key]` where each key is (1-based)."""

    line: int
    key_lines: dict


class LineList(list):
    """A YAML sequence; `line` is where it starts, `item_lines[i]` where each item is (1-based)."""

    line: int
    item_lines: list


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader, node):
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _sequence(loader, node):
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load(path: str | Path):
    """Parse a YAML file into LineDict/LineList values; a syntax error becomes a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror}); check the path") from None
    return loads(text, str(path))


def located(named: str | None, default: str) -> Path | None:
    """The file to read: the one named (even if missing: reading it then says so), else `default` in the
    working directory when it is there, else None (the feature it configures is off)."""
    if named:
        return Path(named)
    return Path(default) if Path(default).is_file() else None


def loads(text: str, source: str):
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else "?"
        raise ConfigError(f"{source}:{line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None


def fail(source: str, line: int | None, message: str):
    raise ConfigError(f"{source}:{line or '?'}: {message}")


_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)")
_SCALE = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value) -> float:
    """Seconds from a number of seconds or a span such as 250ms, 30s, 5m, 2h, 1h30m, 0.5h: the one
    parser of durations and latencies in the lab's files and options."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and _SPAN.sub("", text).strip() == "":
            seconds = sum(float(n) * _SCALE[unit] for n, unit in _SPAN.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration (use seconds or e.g. 30s, 5m, 2h, 1h30m)")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds
