"""The zoo bench runs end to end on a tiny fold (the figures themselves belong to `sextant bench`)."""

from rich.console import Console

from backtests.zoo_bench import run_zoo_bench


def test_zoo_bench_reports_fit_time_and_inference_rate_per_kind():
    console = Console(record=True, width=160)
    figures = run_zoo_bench(console, n_symbols=2, train_days=3, test_days=1,
                            kinds=("lightgbm", "svm"))
    assert set(figures) == {"lightgbm", "svm"}
    for f in figures.values():
        assert f["fit_s"] > 0 and f["rows_per_s"] > 0 and f["test_rows"] > 300
    assert figures["svm"]["fitted_rows"] < figures["svm"]["train_rows"]  # the bounded sample
    assert "inference rows/s" in console.export_text()
