"""Suite-wide guard: tests write only under their own temporary directories.

The live journal and the tuning studies default to ``data/postgres`` (and the journal's
spool to ``data/journal-spool``) under the working directory, which is the user's own
record when the suite runs in a checkout. A test that forgot to point them at its tmp_path
would write its rehearsed days into that record; this fails the run instead.
"""

from pathlib import Path

import pytest

_USER_STATE = ("data/postgres", "data/journal-spool")


@pytest.fixture(scope="session", autouse=True)
def _no_test_writes_the_users_state():
    before = {p: Path(p).exists() for p in _USER_STATE}
    yield
    created = [p for p, existed in before.items() if not existed and Path(p).exists()]
    assert not created, f"a test created {created} in the working directory; point its journal/storage at tmp_path"
