"""`sextant tune dashboard`: optuna-dashboard on a study's own storage, for users who know it.

optuna-dashboard is an optional extra (``pip install 'sextant[dashboard]'``): Sextant's own
study report needs nothing of it. The dashboard runs as its own program on the storage URL the
study lives in (the same URL ``sextant tune`` used, psycopg 3 for PostgreSQL), in the
foreground until the user stops it.
"""

import shutil
import subprocess

import optuna

from backtests.tuning.storage import open_storage
from catalog.database import sqlalchemy_url

DASHBOARD_EXTRA = "dashboard"
DASHBOARD_PROGRAM = "optuna-dashboard"


class DashboardError(Exception):
    """The dashboard cannot be opened (the extra is missing, no such study); the message says why."""


def dashboard_argv(study_name: str, storage_url: str, host: str, port: int) -> list[str]:
    """The optuna-dashboard command line for ``study_name`` in ``storage_url``; checks that the
    program is installed and that the storage holds the study, so a typo is a message, not a
    dashboard showing nothing."""
    program = shutil.which(DASHBOARD_PROGRAM)
    if program is None:
        raise DashboardError(f"{DASHBOARD_PROGRAM} is not installed: it is the optional extra "
                             f"'{DASHBOARD_EXTRA}' (pip install 'sextant[{DASHBOARD_EXTRA}]')")
    url = sqlalchemy_url(storage_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(open_storage(url, heartbeat_seconds=60))]
    if study_name not in names:
        raise DashboardError(f"no study {study_name!r} in the storage; studies: {names}")
    return [program, url, "--host", host, "--port", str(port)]


def run_dashboard(argv: list[str]) -> int:
    """Run the dashboard in the foreground; Ctrl-C stops it (exit code 0)."""
    try:
        return subprocess.run(argv, check=False).returncode
    except KeyboardInterrupt:
        return 0
