"""The embedded PostgreSQL server: started in a directory of ours, quiet where nothing is wrong."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_server_starts_without_a_login_session_and_says_nothing(tmp_path):
    """Containers, CI and services have no XDG_RUNTIME_DIR; the server must still start, answer
    a query, and print no warning about it."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {"PYTHONPATH": str(ROOT)}
    code = (
        "import sys, sqlalchemy\n"
        "from catalog.database import embedded_postgres\n"
        f"with embedded_postgres({str(tmp_path / 'pg')!r}) as url:\n"
        "    with sqlalchemy.create_engine(url).connect() as c:\n"
        "        print(c.execute(sqlalchemy.text('select 41 + 1')).scalar())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
    assert "XDG_RUNTIME_DIR" not in done.stderr, done.stderr
