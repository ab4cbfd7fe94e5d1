"""The Alpaca keys never appear in anything the adapter logs or raises (the Polygon side has
the same check in test_http.py): a whole node lifecycle at DEBUG, a fill, a refusal and a
rejected secret, captured from a process of its own (``log_probe.py`` says why)."""

import subprocess
import sys
from pathlib import Path

KEY_ID = "PK-probe-not-a-key-7Q2W9E4R"  # a paper-style id, spelt so no scanner takes it for a real key
SECRET_KEY = "probe-secret-Zx81Lm27Qv55"


def test_alpaca_keys_never_reach_the_logs(alpaca_catalog: Path):
    repo = Path(__file__).resolve().parents[3]
    probe = subprocess.run(
        [sys.executable, "-m", "tests.adapters.alpaca.log_probe", str(alpaca_catalog), KEY_ID, SECRET_KEY],
        check=False, cwd=repo, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
    )
    output = probe.stdout + probe.stderr
    assert probe.returncode == 0, output[-3000:]
    # The capture saw the adapter talking (otherwise "no key in it" would prove nothing).
    assert "probe done" in output and "wrong secret refused" in output
    assert "AlpacaExecutionClient" in output or "ALPACA" in output
    assert "insufficient buying power" in output  # the refusal, as logged
    for secret in (KEY_ID, SECRET_KEY, SECRET_KEY + "-wrong"):
        assert secret not in output
