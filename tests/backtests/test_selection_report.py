"""The report's SHAP section, from the fold rows a run records."""

from backtests.selection_report import selection_section


def fold(selected: list[str], shares: list[list[float]], ranks: list[list[int]]) -> dict:
    return {"fold": 0, "selection": {
        "selected": selected, "features": ["a", "b", "c"], "shares": shares, "ranks": ranks,
        "sample": {"features": ["a", "b"], "shap": [[0.1, -0.2], [0.3, 0.0]], "values": [[1.0, 2.0], [3.0, 4.0]]},
    }}


def test_no_selection_no_section():
    assert selection_section([{"fold": 0, "models": {}}]) == []


def test_stability_table_counts_folds_and_rank_spread():
    folds = [fold(["a", "b"], [[0.6, 0.3, 0.1], [0.5, 0.2, 0.3]], [[1, 2, 3], [1, 3, 2]]),
             fold(["a", "c"], [[0.4, 0.2, 0.4]], [[1, 3, 2]])]
    blocks = selection_section(folds)
    html = "\n".join(blocks)
    assert "SHAP feature selection" in html and "Selection stability" in html
    table = blocks[-1]
    # a: selected in both folds, always rank 1; b: once, ranks 2..3; c: once, ranks 2..3.
    assert "<tr><td>a</td><td>2/2</td><td>0.500</td><td>1</td><td>1</td><td>0</td></tr>" in table
    assert "<tr><td>b</td><td>1/2</td><td>0.233</td><td>2</td><td>3</td><td>1</td></tr>" in table
    assert "<tr><td>c</td><td>1/2</td><td>0.267</td><td>2</td><td>3</td><td>1</td></tr>" in table
