"""The one rule for names that become directories: model names in the registry, run names
under ``--out``, journal directories. A name is a single path component, so it can never
climb out of the directory it is joined to ("../x", "a/b") or be empty."""

import re

# '@': walk-forward variants, e.g. lightgbm@deep. \Z, not $: "$" also matches before a "\n".
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}\Z"
NAME_RULE = "1-100 letters, digits or _.@- starting with a letter or digit"
_NAME = re.compile(NAME_PATTERN)


def check_name(name: object, what: str = "name") -> None:
    """Configs check the rule at load (``NAME_PATTERN`` in their schema); code that joins a
    name to a path checks it again here, since a struct built in code skips that."""
    if not (isinstance(name, str) and _NAME.match(name)):
        raise ValueError(f"{what} {name!r} must be {NAME_RULE} (a single, path-safe component)")
