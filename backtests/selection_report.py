"""The report's SHAP section: which features each fold selected, how much they mattered, how
stable that was (what ``models.selection`` recorded in every fold row as ``selection``)."""

import html

import numpy as np
import plotly.graph_objects as go

_TOP = 25  # features shown in the summary plot and the table


def selection_section(folds: list[dict]) -> list[str]:
    """HTML blocks for report.html; none when the run did not select features."""
    chosen = [f["selection"] for f in folds if "selection" in f]
    if not chosen:
        return []
    features = chosen[0]["features"]
    shares = np.vstack([np.asarray(s["shares"]) for s in chosen])  # every inner split of every fold
    ranks = np.vstack([np.asarray(s["ranks"]) for s in chosen])
    selected = np.array([[name in s["selected"] for name in features] for s in chosen])
    order = np.argsort(-shares.mean(axis=0), kind="stable")[:_TOP]
    figures = [_summary_figure(features, shares, selected, order), _distribution_figure(chosen)]
    k = len(chosen[0]["selected"])
    return [
        "<h2>SHAP feature selection</h2>",
        (f"<p class=note>Per fold, a reference XGBoost model refit on each inner split of the training window "
        f"explains the inner test rows (exact tree SHAP); the {k} features most often in the top {k} are kept. "
        "Nothing outside a fold's training window is read.</p>"),
        *(fig.to_html(full_html=False, include_plotlyjs=False) for fig in figures),
        _stability_table(features, shares, ranks, selected, order, len(chosen)),
    ]


def _summary_figure(features: list[str], shares: np.ndarray, selected: np.ndarray, order: np.ndarray) -> go.Figure:
    rows = order[::-1]
    fig = go.Figure(go.Bar(
        x=shares.mean(axis=0)[rows], y=[features[j] for j in rows], orientation="h",
        marker={"color": selected.mean(axis=0)[rows], "colorscale": "Blues", "cmin": 0, "cmax": 1,
                "colorbar": {"title": "share of folds<br>selected"}},
    ))
    fig.update_layout(title="Mean |SHAP| share per feature (inner test rows, mean over splits and folds)",
                      height=max(300, 22 * len(rows)), margin={"l": 160})
    return fig


def _distribution_figure(chosen: list[dict]) -> go.Figure:
    """Beeswarm-like: each explained row's SHAP value per feature, coloured by the feature's
    value (its rank within the sample), from every fold's last inner split."""
    fig = go.Figure()
    for s in chosen:
        sample = s["sample"]
        shap_values, values = np.asarray(sample["shap"]), np.asarray(sample["values"])
        for j, name in enumerate(sample["features"]):
            colour = np.argsort(np.argsort(values[:, j])) / max(len(values) - 1, 1)
            fig.add_trace(go.Scatter(
                x=shap_values[:, j], y=[name] * len(shap_values), mode="markers", showlegend=False,
                marker={"size": 4, "color": colour, "colorscale": "RdBu_r", "cmin": 0, "cmax": 1, "opacity": 0.6},
            ))
    fig.update_traces(marker_line_width=0)
    fig.update_yaxes(type="category")
    fig.update_layout(title="SHAP value per explained row (colour: feature value, low blue to high red)",
                      height=450, margin={"l": 160}, xaxis_title="SHAP value (log-odds)")
    return fig


def _stability_table(features: list[str], shares: np.ndarray, ranks: np.ndarray, selected: np.ndarray,
                     order: np.ndarray, n_folds: int) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("feature", "folds selected", "mean |SHAP| share",
                                              "best rank", "worst rank", "rank spread"))
    rows = []
    for j in order:
        cells = [features[j], f"{int(selected[:, j].sum())}/{n_folds}", f"{shares[:, j].mean():.3f}",
                 int(ranks[:, j].min()), int(ranks[:, j].max()), int(ranks[:, j].max() - ranks[:, j].min())]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return ("<h3>Selection stability (ranks over every inner split of every fold)</h3><table><tr>"
            + head + "</tr>" + "".join(rows) + "</table>")
