"""The embedded journal database yields the CPU to the trading node.

On one machine the node, its venues and the embedded PostgreSQL share the cores. The
journal's writes are batched and asynchronous: they can wait, the order path cannot. Measured
on 2 shared cores (`sextant bench --part live`, 50-order bursts), the server's work on each
flush raised the burst's p50 by ~2.4 ms and its p99 by ~85%; the same writes with the server
reniced cost +0.8 ms and ~8%, and no writes at all during the run ~+0.4 ms. So when the
journal starts or joins the embedded server, the server (the postmaster and its processes:
backends are forked from it and inherit its niceness) is made nicer; never less nice than
it is. A server the user runs (a DSN) is theirs to place.
"""

import logging
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


def yield_cpu(data_dir: Path, niceness: int) -> None:
    """Raise the niceness of the PostgreSQL server running in ``data_dir`` and of its
    processes to at least ``niceness`` (0 leaves them alone)."""
    if niceness == 0:
        return
    pid = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    for process in (postmaster, *postmaster.children()):
        try:
            if process.nice() < niceness:
                process.nice(niceness)
        except psutil.NoSuchProcess:  # a backend that ended meanwhile
            continue
        except psutil.AccessDenied:  # another user's server: it runs, at its own priority
            log.warning("journal: cannot lower the priority of the embedded PostgreSQL in %s "
                        "(process %d belongs to another user)", data_dir, process.pid)
            return
