"""The registry as the Models page shows and changes it: the pinned champion, the challengers
with the evidence of their latest evaluation, the decisions so far, and the commands pin,
promote and roll back.

The commands are the ones `sextant models` runs (``models.promotion``: ``pin_by_hand``,
``promote_by_hand``, ``PromotionStore.rollback``), so a change from the page is the change the
command line would make. A live node loads the champion when it is built (``LiveConfig.
model_dirs``), so whatever is pinned now trades from the next pre-open, never mid-session.
An ensemble is named by its fold (one fold, one ensemble).
"""

from datetime import UTC, datetime
from pathlib import Path

from live.journal.postgres import connect
from live.retrain import DECISION_KIND
from models.promotion import (
    Decision,
    Ensemble,
    PromotionError,
    PromotionStore,
    find_ensembles,
    pin_by_hand,
    promote_by_hand,
)
from models.registry import ModelRegistry

CHAMPION, CHALLENGER, EARLIER = "champion", "challenger", "earlier"


def ensembles_with_roles(root: Path) -> list[dict]:
    """Every ensemble of the registry at ``root``, newest fold first, with its role and the
    evidence of its latest evaluation as a challenger (None: never evaluated)."""
    store = PromotionStore(root)
    champion = store.champion().fold if store.has_champion() else None
    rows = []
    for ensemble in reversed(find_ensembles(ModelRegistry(root))):
        role = (CHAMPION if ensemble.fold == champion else
                CHALLENGER if champion is None or ensemble.fold > champion else EARLIER)
        evaluation = store.latest_evaluation(ensemble.fold)
        rows.append({"fold": ensemble.fold, "role": role, "members": ensemble.members(),
                     "versions": dict(ensemble.versions), "train_start": ensemble.train_start[:10],
                     "train_end": ensemble.train_end[:10], "evaluation": _evidence(evaluation)})
    return rows


def decision_history(root: Path, limit: int) -> list[dict]:
    """The newest ``limit`` decisions of ``promotion.json``, newest first."""
    return [decision_line(d) for d in reversed(PromotionStore(root).history()[-limit:])]


def journaled_promotions(dsn: str, limit: int) -> list[dict]:
    """The nightly retrains' decisions the journal holds (kind "promotion"), newest first."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT ts, trading_day, subject FROM journal.decisions WHERE kind = %s "
                            "ORDER BY ts DESC LIMIT %s", (DECISION_KIND, limit)).fetchall()
    return [{"at": datetime.fromtimestamp(ts / 1e9, UTC).isoformat(timespec="seconds"),
             "trading_day": day.isoformat(), "subject": subject} for ts, day, subject in rows]


def pin_fold(root: Path, fold: int) -> Decision:
    """`sextant models pin` for the ensemble of ``fold``."""
    return pin_by_hand(PromotionStore(root), ensemble_of_fold(root, fold))


def promote_fold(root: Path, fold: int, *, force: bool) -> Decision:
    """`sextant models promote [--force]` for the ensemble of ``fold``."""
    return promote_by_hand(PromotionStore(root), ensemble_of_fold(root, fold), force=force)


def rollback(root: Path) -> Decision:
    """`sextant models rollback`."""
    return PromotionStore(root).rollback()


def ensemble_of_fold(root: Path, fold: int) -> Ensemble:
    for ensemble in find_ensembles(ModelRegistry(root)):
        if ensemble.fold == fold:
            return ensemble
    raise PromotionError(f"no ensemble of fold {fold} in {root}")


def decision_line(decision: Decision) -> dict:
    return {"at": decision.at[:19], "action": decision.action, "forced": decision.forced,
            "subject": decision.challenger.label() if decision.challenger else "-", "reason": decision.reason,
            "champion": decision.champion.fold if decision.champion else None}


def _evidence(decision: Decision | None) -> dict | None:
    if decision is None or decision.evidence is None:
        return None
    evidence = decision.evidence
    passes, why = evidence.passes()
    return {"action": decision.action, "at": decision.at[:19], "against": decision.previous.fold
            if decision.previous else None, "metric": evidence.metric, "margin": evidence.margin,
            "champion_value": evidence.champion_value, "challenger_value": evidence.challenger_value,
            "sessions": f"{evidence.sessions[0]}..{evidence.sessions[-1]}" if evidence.sessions else "-",
            "passes": passes, "why": why, "champion_metrics": evidence.champion_metrics,
            "challenger_metrics": evidence.challenger_metrics}
