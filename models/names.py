"""The one rule for names that become directories: model names in the registry, run names
under ``--out``, journal directories. A name is a single path component, so it can never
climb out of the directory it is joined to ("../x", "a/b") or be empty."""

import re

# '@': walk-forward variants, e.g. lightgbm@deep. \Z, not $: "$" also matches before a "\n".
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}\Z"
NAME_RULE = "1-100 letters, digits or _.@- starting with a letter or digit"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.match(name) is not None


def check_name(name: object, what: str = "name") -> None:
    if not is_valid_name(name):
        raise ValueError(f"{what} {name!r} must be {NAME_RULE} (a single, path-safe component)")
