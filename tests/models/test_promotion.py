"""The champion/challenger store: ensembles are a fold's versions, the pinned champion is what
stays pinned whatever is saved later, a rollback restores the previous champion, the history
keeps every decision, the guard compares by more than the margin, and the file is replaced
atomically (a concurrent pin of a fresh registry pins once)."""

import json
import threading
from pathlib import Path

import msgspec
import pytest

from backtests.config import ConfigError, parse_config
from models.promotion import (
    PROMOTION_FILE,
    Decision,
    Evidence,
    NoChampionError,
    PromotionError,
    PromotionStore,
    champion_or_pin_newest,
    ensemble_of,
    find_ensembles,
    next_fold,
    promote_by_hand,
    utc_now,
)
from models.registry import ModelNotFoundError, ModelRegistry
from models.zoo import build_model
from tests.models.test_zoo import synthetic_panel

NAMES = ("lightgbm", "xgboost")


def save_fold(registry: ModelRegistry, fold: int, names=NAMES, horizons: bool = False) -> None:
    """One fold's ensemble: a tiny model per name, saved as the train step saves them."""
    panel = synthetic_panel(n_bars=200)
    for name in names:
        model = build_model("lightgbm", {"n_estimators": 3}, name=name)
        model.fit(panel, panel.usable_rows(require_label=True), seed=fold)
        registry.save(model, {"train_start": f"2024-12-{2 + fold:02d}T05:00:00+00:00",
                              "train_end": f"2024-12-{10 + fold:02d}T05:00:00+00:00", "fold": fold, "metrics": {},
                              "data_hash": "x", "universe": ["S000"]})
    if horizons:
        (registry.root / "horizons" / f"fold-{fold}").mkdir(parents=True)


def evidence(champion: float | None, challenger: float | None, margin: float = 0.0) -> Evidence:
    return Evidence(metric="sharpe", margin=margin, sessions=["2024-12-20", "2024-12-23"],
                    window_start="2024-12-20T05:00:00+00:00", window_end="2024-12-24T05:00:00+00:00",
                    champion_value=champion, challenger_value=challenger,
                    champion_metrics={"sharpe": champion}, challenger_metrics={"sharpe": challenger})


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    reg = ModelRegistry(tmp_path / "models")
    save_fold(reg, 0)
    save_fold(reg, 1, horizons=True)
    return reg


def test_an_ensemble_is_the_versions_of_one_fold(registry):
    save_fold(registry, 2, names=("lightgbm",))  # a fold that trained one model only
    ensembles = find_ensembles(registry)
    assert [(e.fold, e.versions) for e in ensembles] == [
        (0, {"lightgbm": 1, "xgboost": 1}), (1, {"lightgbm": 2, "xgboost": 2}), (2, {"lightgbm": 3})]
    assert [e.horizons_dir for e in ensembles] == [None, "horizons/fold-1", None]
    assert ensembles[1].train_end == "2024-12-11T05:00:00+00:00"
    assert ensemble_of(registry, "xgboost", 2) == ensembles[1]
    assert next_fold(registry) == 3
    with pytest.raises(ModelNotFoundError, match="no version 7"):
        ensemble_of(registry, "xgboost", 7)


def test_the_pinned_champion_stays_pinned_when_newer_versions_are_saved(registry):
    store = PromotionStore(registry.root)
    with pytest.raises(NoChampionError, match="sextant models pin"):
        store.champion()
    champion, decision = champion_or_pin_newest(registry, list(NAMES))
    assert champion.fold == 1 and decision.action == "pin" and "automatic" in decision.reason
    save_fold(registry, 2)
    assert champion_or_pin_newest(registry, list(NAMES)) == (champion, None)  # pinned once, not re-pinned
    assert store.champion().versions == {"lightgbm": 2, "xgboost": 2}
    assert registry.latest("lightgbm") == 3


def test_an_automatic_pin_takes_the_newest_ensemble_holding_every_weighted_model(registry):
    save_fold(registry, 2, names=("lightgbm",))
    champion, _ = champion_or_pin_newest(registry, list(NAMES))
    assert champion.fold == 1
    lightgbm_only = ModelRegistry(registry.root.parent / "lightgbm-only")
    save_fold(lightgbm_only, 0, names=("lightgbm",))
    with pytest.raises(PromotionError, match=r"no ensemble .* holds every model of \['lightgbm', 'xgboost'\]"):
        champion_or_pin_newest(lightgbm_only, list(NAMES))
    assert not (lightgbm_only.root / PROMOTION_FILE).exists()


def test_rollback_restores_the_previous_champion_and_the_history_keeps_every_decision(registry):
    store = PromotionStore(registry.root)
    first, second = find_ensembles(registry)
    store.pin(first, "by hand")
    store.record(Decision(action="wait", reason="no window yet", at=utc_now(), champion=first))
    store.promote(second, "it won", evidence(0.5, 1.5), as_of="2024-12-23")
    assert store.champion() == second
    rolled = store.rollback()
    assert store.champion() == first
    assert (rolled.champion, rolled.previous) == (first, second)
    with pytest.raises(PromotionError, match="no previous champion"):
        store.rollback()
    history = store.history()
    assert [d.action for d in history] == ["pin", "wait", "promote", "rollback"]
    assert history[2].evidence == evidence(0.5, 1.5) and history[2].previous == first
    assert store.latest_evaluation(second.fold) == history[2]
    assert store.latest_evaluation(first.fold) is None
    # the file is plain JSON a journal or a person can read, and no temporary file is left behind
    assert json.loads((registry.root / PROMOTION_FILE).read_text())["lineage"][0]["fold"] == 0
    assert sorted(p.name for p in registry.root.iterdir() if p.name.startswith(".promotion")) == [
        f".{PROMOTION_FILE}.lock"]


def test_a_promotion_judged_against_a_replaced_champion_is_refused(registry):
    store = PromotionStore(registry.root)
    first, second = find_ensembles(registry)
    store.pin(first, "by hand")
    store.pin(second, "by hand, while the night was judging")
    late = store.promote(first, "it won", evidence(0.5, 1.5), judged_against=first)
    assert late.action == "refuse" and "champion changed to fold 1" in late.reason
    assert store.champion() == second and store.history()[-1] == late


@pytest.mark.parametrize(("champion", "challenger", "margin", "passes"), [
    (0.5, 1.5, 0.0, True),
    (0.5, 1.5, 0.99, True),
    (0.5, 1.5, 1.0, False),  # "by more than the margin"
    (1.5, 0.5, 0.0, False),
    (1.0, 1.0, 0.0, False),  # a tie keeps the champion
    (None, 1.0, 0.0, False),  # an undefined metric never promotes
])
def test_the_guard_promotes_only_by_more_than_the_margin(champion, challenger, margin, passes):
    ok, reason = evidence(champion, challenger, margin).passes()
    assert ok is passes
    assert ("undefined" in reason) if champion is None else (f"margin {margin:g}" in reason)


def test_a_hand_promotion_needs_passing_evidence_or_force(registry):
    store = PromotionStore(registry.root)
    first, second = find_ensembles(registry)
    store.pin(first, "by hand")
    with pytest.raises(PromotionError, match="never evaluated.*--force"):
        promote_by_hand(store, second, force=False)
    store.record(Decision(action="refuse", reason="lost", at=utc_now(), champion=first, previous=first,
                          challenger=second, evidence=evidence(1.5, 0.5)))
    with pytest.raises(PromotionError, match="guard refuses.*does not beat.*--force"):
        promote_by_hand(store, second, force=False)
    assert store.champion() == first
    forced = promote_by_hand(store, second, force=True)
    assert forced.forced and forced.action == "promote" and store.champion() == second
    with pytest.raises(PromotionError, match="already the champion"):
        promote_by_hand(store, second, force=True)


def test_concurrent_pins_of_a_fresh_registry_pin_once(registry):
    results = []
    threads = [threading.Thread(target=lambda: results.append(champion_or_pin_newest(registry, list(NAMES))))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r[0].fold for r in results}) == 1
    assert sum(r[1] is not None for r in results) == 1
    assert [d.action for d in PromotionStore(registry.root).history()] == ["pin"]


@pytest.mark.parametrize(("promotion", "key"), [
    ({"margin": -0.1}, "promotion.margin"),
    ({"metric": "sortino"}, "promotion.metric"),
    ({"evaluation_sessions": 0}, "promotion.evaluation_sessions"),
    ({"windw": 3}, "promotion.windw"),
])
def test_a_bad_promotion_section_is_refused_naming_the_key(promotion, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"promotion": promotion})


def test_a_decision_is_a_plain_record_for_the_journal(registry):
    first, second = find_ensembles(registry)
    decision = Decision(action="refuse", reason="lost", at=utc_now(), as_of="2024-12-23", champion=first,
                        challenger=second, evidence=evidence(1.5, None))
    record = decision.to_record()
    assert record["evidence"]["challenger_value"] is None and record["challenger"]["versions"] == {
        "lightgbm": 2, "xgboost": 2}
    assert msgspec.json.decode(msgspec.json.encode(record), type=Decision) == decision
