"""The embedded journal database yields the CPU to the node: once a journal opens it, the
server and every backend it forks after (a sink's connection) run nicer, never less nice."""

import shutil
import tempfile
from pathlib import Path

import psutil

from live.journal import JournalSettings, open_journal
from live.journal.postgres import connect


def _server(data_dir: Path) -> psutil.Process:
    return psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))


def test_the_embedded_server_and_its_new_backends_run_at_the_configured_niceness():
    # not under tmp_path: as root, pgserver runs PostgreSQL as its own user (pytest's are 0700)
    root = Path(tempfile.mkdtemp(prefix="sextant-journal-nice-"))
    root.chmod(0o711)
    data_dir = root / "postgres"
    try:
        settings = JournalSettings(sinks=("postgres",), data_dir=str(data_dir), spool_dir=str(root / "spool"),
                                   embedded_nice=7)
        with open_journal(settings) as journal, connect(journal.dsn) as conn:
            backend = psutil.Process(conn.info.backend_pid)
            assert _server(data_dir).nice() == 7
            assert backend.nice() == 7
            with open_journal(JournalSettings(sinks=("postgres",), data_dir=str(data_dir), spool_dir=str(root / "spool"),
                                              embedded_nice=3)):
                assert _server(data_dir).nice() == 7  # never made less nice
    finally:
        shutil.rmtree(root, ignore_errors=True)
