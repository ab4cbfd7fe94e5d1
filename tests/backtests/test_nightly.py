"""The nightly retrain and its guarded promotion, on generated markets from one seed that
differ only in the planted signal (0.0: a random walk).

An ensemble trained on the planted market must win over one trained on the random walk when
both are judged on later planted sessions, and the reverse must be refused with the evidence;
a margin the gain does not reach is refused too. The evaluation window lies after both
training windows and the embargo, and before the end of ``as_of`` although the catalog holds
later sessions; right after a retrain there is no window, and the night says so.

Sessions of the 12-day catalogs: 12-13, 16, 17, 18, 19, 20, 23, 24 (half day), 26, 27, 30, 31.
Ensembles train on 12-17..12-20 (as of 12-20), 12-23 is the embargo, and a judgement as of
12-27 covers 12-24, 12-26, 12-27; 12-30 and 12-31 exist but must not be used.
"""

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest

from backtests.config import BacktestConfig, parse_config
from backtests.nightly import (
    NightlyInputs,
    judge_challenger,
    retrain_and_evaluate,
    train_challenger,
)
from catalog.jobs import generate_catalog
from catalog.store import EmptyCatalogError, MarketCatalog
from models.promotion import (
    Decision,
    PromotionStore,
    RegistryBusyError,
    find_ensembles,
    retrain_lock,
)
from models.registry import ModelRegistry
from strategies.signals import MLSignal

TRAIN_AS_OF, JUDGE_AS_OF = dt.date(2024, 12, 20), dt.date(2024, 12, 27)
EVALUATED = ["2024-12-24", "2024-12-26", "2024-12-27"]
NY = "America/New_York"
CONFIG = {
    "walk_forward": {"folds": 1, "train_days": 4, "test_days": 1, "embargo_days": 1},
    "models": {"lightgbm": {"params": {"n_estimators": 30}}, "xgboost": {"params": {"n_estimators": 30}}},
    "strategy": {"entry_threshold": 0.6},
    "promotion": {"metric": "auc", "evaluation_sessions": 3},
    "workers": 2,
}


def config(**promotion) -> BacktestConfig:
    return parse_config({**CONFIG, "promotion": {**CONFIG["promotion"], **promotion}})


@pytest.fixture(scope="module")
def markets(tmp_path_factory) -> dict[str, MarketCatalog]:
    root = tmp_path_factory.mktemp("nightly-markets")
    return {kind: generate_catalog(root / kind, n_symbols=3, n_days=12, seed=11, signal_strength=strength)
            for kind, strength in (("random", 0.0), ("planted", 0.3))}


@pytest.fixture(scope="module")
def registries(markets, tmp_path_factory) -> dict[str, Path]:
    """Per order, a registry whose fold 0 (the champion to be) was trained on the first market
    and fold 1 (the challenger) on the second, both on the sessions through TRAIN_AS_OF."""
    root = tmp_path_factory.mktemp("nightly-registries")
    made = {}
    for first, second in (("random", "planted"), ("planted", "random")):
        registry = ModelRegistry(root / f"{first}-then-{second}")
        for kind in (first, second):
            train_challenger(NightlyInputs.prepare(config(), markets[kind], TRAIN_AS_OF), registry, root / "work")
        made[f"{first}-then-{second}"] = registry.root
    return made


def copied(registries, which: str, tmp_path: Path, pin: bool = True) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "models")
    shutil.copytree(registries[which], registry.root)
    if pin:
        PromotionStore(registry.root).pin(find_ensembles(registry)[0], "test: the older ensemble")
    return registry


def judge(registry: ModelRegistry, market: MarketCatalog, work: Path, **promotion) -> Decision:
    return judge_challenger(NightlyInputs.prepare(config(**promotion), market, JUDGE_AS_OF), registry, work)


@pytest.fixture(scope="module")
def promoted(registries, markets, tmp_path_factory) -> tuple[Decision, ModelRegistry, Path]:
    tmp = tmp_path_factory.mktemp("promoted")
    registry = copied(registries, "random-then-planted", tmp)
    return judge(registry, markets["planted"], tmp / "work"), registry, tmp / "work"


@pytest.mark.slow
def test_a_challenger_with_the_planted_edge_is_promoted_over_a_random_walk_champion(promoted, markets):
    decision, registry, work = promoted
    assert decision.action == "promote", decision.reason
    assert decision.challenger.fold == 1 and decision.previous.fold == 0
    evidence = decision.evidence
    assert evidence.challenger_value > evidence.champion_value
    assert evidence.champion_metrics["labelled_rows"] == evidence.challenger_metrics["labelled_rows"] > 1000
    assert evidence.challenger_metrics["test_sessions"] == 3  # both backtested over the window
    store = PromotionStore(registry.root)
    assert store.champion().fold == 1
    assert [d.action for d in store.history()] == ["pin", "promote"]
    assert store.history()[-1] == decision
    # judged once: the next night has nothing newer to judge
    again = judge(registry, markets["planted"], work / "again")
    assert again.action == "wait" and "no challenger newer than the champion (fold 1)" in again.reason


@pytest.mark.slow
def test_the_evaluation_window_lies_after_both_training_windows_and_before_the_night_ends(promoted):
    decision, registry, work = promoted
    evidence = decision.evidence
    assert evidence.sessions == EVALUATED
    start, end = pd.Timestamp(evidence.window_start), pd.Timestamp(evidence.window_end)
    assert start == pd.Timestamp("2024-12-24", tz=NY) and end == pd.Timestamp("2024-12-28", tz=NY)
    embargo_end = pd.Timestamp("2024-12-24", tz=NY)  # the embargo session 12-23 ends here
    for ensemble in (decision.previous, decision.challenger):
        assert pd.Timestamp(ensemble.train_end) == pd.Timestamp("2024-12-21", tz=NY) < embargo_end <= start
        for name, version in ensemble.versions.items():
            fitted = registry.meta(name, version)["fitted"]
            assert pd.Timestamp(fitted["last_ts"]) < pd.Timestamp(ensemble.train_end)
            assert pd.Timestamp(fitted["last_label_end"]) < pd.Timestamp(ensemble.train_end)
    for role in ("champion-fold-0", "challenger-fold-1"):
        signals = MarketCatalog(work / "evaluation" / role / "signals")
        ts = pd.to_datetime(signals.read_table(MLSignal, [f"S00{i}.ALPACA" for i in range(3)])
                            .column("ts_init").to_numpy(), utc=True)
        assert len(ts) > 1000
        assert start <= ts.min() and ts.max() < end  # 12-30 and 12-31 are in the catalog, never used


@pytest.mark.slow
def test_a_random_walk_challenger_is_refused_over_a_planted_champion_with_the_evidence(registries, markets,
                                                                                       tmp_path):
    registry = copied(registries, "planted-then-random", tmp_path)
    decision = judge(registry, markets["planted"], tmp_path / "work")
    assert decision.action == "refuse"
    assert decision.evidence.champion_value > decision.evidence.challenger_value
    assert "does not beat" in decision.reason and decision.evidence.sessions == EVALUATED
    store = PromotionStore(registry.root)
    assert store.champion().fold == 0
    assert store.history()[-1] == decision and store.latest_evaluation(1) == decision


@pytest.mark.slow
def test_a_margin_the_gain_does_not_reach_is_refused(registries, markets, tmp_path):
    registry = copied(registries, "random-then-planted", tmp_path)
    decision = judge(registry, markets["planted"], tmp_path / "work", margin=0.5)
    evidence = decision.evidence
    assert 0 < evidence.challenger_value - evidence.champion_value < 0.5
    assert decision.action == "refuse" and "by more than the margin 0.5" in decision.reason
    assert PromotionStore(registry.root).champion().fold == 0


def test_right_after_a_retrain_there_is_no_window_yet(registries, markets, tmp_path):
    """An unpinned registry: its newest ensemble is pinned, tonight's challenger trained on the
    window ending at as_of, and nothing is judged (the decision says why)."""
    registry = copied(registries, "random-then-planted", tmp_path, pin=False)
    as_of = dt.date(2024, 12, 23)
    decision = retrain_and_evaluate(config(), markets["planted"], registry, as_of, tmp_path / "work")
    assert decision.action == "wait" and decision.as_of == "2024-12-23"
    assert decision.champion.fold == 1  # pinned: the newest ensemble when there was no champion
    assert "challenger fold 2 has 0 of the 3 sessions" in decision.reason
    trained = decision.trained
    assert trained.fold == 2 and trained.versions == {"lightgbm": 3, "xgboost": 3}
    assert pd.Timestamp(trained.train_start) == pd.Timestamp("2024-12-18", tz=NY)
    assert pd.Timestamp(trained.train_end) == pd.Timestamp("2024-12-24", tz=NY)  # through as_of, no later
    meta = registry.meta("lightgbm", 3)
    assert pd.Timestamp(meta["fitted"]["last_label_end"]) < pd.Timestamp(trained.train_end)
    assert meta["metrics"]["rows"] == 0  # no test window: nothing is predicted at training time
    history = PromotionStore(registry.root).history()
    assert [d.action for d in history] == ["pin", "wait"]
    assert history[-1] == decision
    rerun = retrain_and_evaluate(config(), markets["planted"], registry, as_of, tmp_path / "work")
    assert rerun.trained == trained and len(find_ensembles(registry)) == 3  # a restarted night trains no twin


def test_a_night_before_enough_sessions_refuses_to_train(registries, markets, tmp_path):
    registry = copied(registries, "random-then-planted", tmp_path)
    with pytest.raises(EmptyCatalogError, match=r"trains on 4 sessions .* only 2 exist through 2024-12-16"):
        retrain_and_evaluate(config(), markets["planted"], registry, dt.date(2024, 12, 16), tmp_path / "work")
    assert len(find_ensembles(registry)) == 2


def test_a_retrain_while_another_runs_on_the_registry_is_refused_naming_it(registries, markets, tmp_path):
    """The operator's retrain (the panel, `sextant models retrain`) and the scheduler's
    post-close would each train a twin and judge the same challenger twice."""
    registry = copied(registries, "random-then-planted", tmp_path)
    history = PromotionStore(registry.root).history()
    with retrain_lock(registry, dt.date(2024, 12, 23)), pytest.raises(
            RegistryBusyError, match=r"a retrain of registry .* as of 2024-12-23 \(pid \d+, since .*one at a time"):
        retrain_and_evaluate(config(), markets["planted"], registry, dt.date(2024, 12, 23), tmp_path / "work")
    assert len(find_ensembles(registry)) == 2 and PromotionStore(registry.root).history() == history


@pytest.mark.slow
def test_night_after_night_a_challenger_waits_for_its_window_then_is_judged(registries, markets, tmp_path):
    """Fold 1 (planted, trained through 12-20) waits while 12-23 (the embargo), 12-24 and 12-26
    pass, and is judged on the night of 12-27; each night also trains its own challenger."""
    registry = copied(registries, "random-then-planted", tmp_path)
    nights = [dt.date(2024, 12, d) for d in (23, 24, 26, 27)]
    decisions = [retrain_and_evaluate(config(), markets["planted"], registry, night, tmp_path / str(night))
                 for night in nights]
    assert [d.action for d in decisions] == ["wait", "wait", "wait", "promote"]
    assert [d.trained.fold for d in decisions] == [2, 3, 4, 5]
    assert all(f"challenger fold 1 has {n} of the 3" in d.reason for n, d in zip(range(3), decisions))
    assert decisions[-1].challenger.fold == 1 and decisions[-1].evidence.sessions == EVALUATED
    assert PromotionStore(registry.root).champion().fold == 1
