"""Reading a settings file: strict YAML in, a typed msgspec struct out, or one message that
names the file, the key and (for YAML mistakes) the line.

Every config Sextant reads (walk-forward, live, the strategy settings a tuner writes) goes
through these two functions, so they share one YAML dialect and one validation library:
msgspec, the library NautilusTrader's own configs use, so ``StrategySettings`` and
``RiskRules`` are the same objects in a file, in a tuner and in the engine config. msgspec
is strict: ``true`` is not an int and ``"3"`` is not a number.
"""

import re
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

from models.names import NAME_PATTERN, NAME_RULE

T = TypeVar("T")


class SettingsFileError(Exception):
    """A settings file or mapping that cannot be used; the message names the file and key.
    Each config package re-raises it as its own error type (ConfigError, LiveConfigError)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *base" merges are meant to be overridden
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = first_line.get(key)
            except TypeError:
                continue  # an unhashable key: PyYAML's own error says so below
            if seen is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given at line {seen})", key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (an empty file is an empty mapping)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise SettingsFileError(f"{path}: file not found") from e
    except IsADirectoryError as e:
        raise SettingsFileError(f"{path}: is a directory, not a YAML file") from e
    except PermissionError as e:
        raise SettingsFileError(f"{path}: permission denied") from e
    except UnicodeDecodeError as e:
        raise SettingsFileError(f"{path}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from e
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SettingsFileError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', None) or e}") from e
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SettingsFileError(f"{path}: top level must be a mapping of keys, got {type(raw).__name__}")
    return raw


def convert(raw: Any, kind: type[T], source: str, at: str = "") -> T:
    """``raw`` validated as ``kind``; ``source`` (a file name) starts the error message and
    ``at`` is where ``raw`` sits in the file (e.g. "models.lightgbm"), for the key names."""
    try:
        return msgspec.convert(raw, kind, dec_hook=_decode_path)
    except msgspec.ValidationError as e:
        named = _with_mapping_keys(e, raw, kind)
        message = describe(named, at)
        if str(named).startswith("Invalid enum value") and (choices := _choices(kind, _error_path(named))):
            message += f"; one of: {', '.join(map(str, choices))}"
        raise SettingsFileError(f"{source}: {message}") from e  # msgspec's own error stays the cause


def describe(error: msgspec.ValidationError, at: str = "") -> str:
    """msgspec's "Expected `int`, got `bool` - at `$.walk_forward.folds`" as
    "'walk_forward.folds': expected `int`, got `bool`" (keys the way the YAML spells them)."""
    text = str(error)
    found = re.fullmatch(r"(?s)(?P<msg>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?", text)
    assert found is not None  # the pattern matches any text
    msg = found["msg"]
    path = ".".join(p for p in (at, (found["path"] or "").lstrip(".")) if p)
    if found["key"]:
        msg = f"a key: {msg[:1].lower()}{msg[1:]}"
    if sub := re.match(r"'(?P<key>[^']+)' (?P<rest>.*)", msg):  # a __post_init__ naming its own key
        path, msg = ".".join(p for p in (path, sub["key"]) if p), sub["rest"]
    if unknown := re.fullmatch(r"Object contains unknown field `(?P<field>[^`]+)`", msg):
        return f"unknown key '{'.'.join(p for p in (path, unknown['field']) if p)}'"
    msg = msg.replace(f"matching regex {NAME_PATTERN!r}", f"that is {NAME_RULE}")
    msg = msg[:1].lower() + msg[1:]
    return f"'{path}': {msg}" if path else msg


def _error_path(error: msgspec.ValidationError) -> list[str | int]:
    """``$.features.timeframes[0]`` as ["features", "timeframes", 0]."""
    found = re.search(r" - at `\$(?P<path>[^`]*)`$", str(error))
    return _path_parts(found["path"]) if found else []


def _path_parts(path: str) -> list[str | int]:
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)
    return [name or int(index) for name, index in parts]


def _with_mapping_keys(error: msgspec.ValidationError, raw: Any, kind: type) -> msgspec.ValidationError:
    """msgspec places a bad value of a mapping at ``$.weights[...]``, not at its key; the key
    is the entry that, alone in the mapping, fails the same way (a user must be told which
    weight is wrong, not that one is)."""
    text = str(error)
    while found := re.search(r" - at `\$(?P<head>[^`]*?)\[\.\.\.\](?P<tail>[^`]*)`$", text):
        parts = _path_parts(found["head"])
        mapping = _at(raw, parts)
        if not isinstance(mapping, dict):
            break
        culprit = next((key for key, value in mapping.items()
                        if _fails_alike(_replaced(raw, parts, {key: value}), kind, text)), None)
        if culprit is None:
            break
        text = f"{text[:found.start()]} - at `${found['head']}.{culprit}{found['tail']}`"
    return msgspec.ValidationError(text)


def _at(raw: Any, parts: list[str | int]) -> Any:
    for part in parts:
        held = (isinstance(raw, dict) and part in raw
                or isinstance(raw, list) and isinstance(part, int) and part < len(raw))
        if held:
            raw = raw[part]
        else:
            return None
    return raw


def _replaced(raw: Any, parts: list[str | int], value: Any) -> Any:
    """A copy of ``raw`` with ``value`` at ``parts`` (only the containers on the way copied)."""
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    copy = dict(raw) if isinstance(raw, dict) else list(raw)
    copy[head] = _replaced(raw[head], rest, value)
    return copy


def _fails_alike(raw: Any, kind: type, text: str) -> bool:
    try:
        msgspec.convert(raw, kind, dec_hook=_decode_path)
    except msgspec.ValidationError as e:
        return str(e) == text
    return False


def _choices(kind: type, path: list[str | int]) -> tuple | None:
    """The values the Literal or Enum at ``path`` of ``kind`` allows (None if it is neither):
    msgspec's "invalid enum value" names the wrong one, the user needs the right ones."""
    info = msgspec.inspect.type_info(kind)
    for part in [*path, None]:
        while isinstance(info, msgspec.inspect.UnionType):  # "X | None": the member that is not None
            info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), None)
        if isinstance(info, msgspec.inspect.Metadata):
            info = info.type
        if part is None:
            break
        if isinstance(info, msgspec.inspect.StructType):
            info = next((f.type for f in info.fields if f.encode_name == part), None)
        elif isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
        elif isinstance(info, msgspec.inspect.TupleType) and isinstance(part, int):
            info = info.item_types[part] if part < len(info.item_types) else None
        elif hasattr(info, "item_type"):  # list, set, variable-length tuple
            info = info.item_type
        else:
            return None
    if isinstance(info, msgspec.inspect.LiteralType):
        return info.values
    if isinstance(info, msgspec.inspect.EnumType):
        return tuple(member.value for member in info.cls)
    return None


def _decode_path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
