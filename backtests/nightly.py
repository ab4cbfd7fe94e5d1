"""The nightly retrain with guarded champion/challenger promotion.

After a session closes (``as_of``: the last completed session; later bars in the catalog, as
in a rehearsal, are never used), on the live model registry:

1. The champion is the pinned one (``models.promotion``); a registry without one gets its
   newest ensemble pinned, and the history says so.
2. A challenger is fitted by the walk-forward's own train step (``train_fold``) on the latest
   train window: the ``walk_forward.train_days`` sessions ending at ``as_of`` (from the first
   session when ``anchored``), saved as the registry's next fold. Its test window is empty:
   the sessions it will be judged on have not happened yet.
3. The newest challenger not yet judged (newer than the champion and than every challenger
   judged before) whose evaluation window is complete is judged. The window: the last
   ``promotion.evaluation_sessions`` sessions through ``as_of``, every one of them after both
   ensembles' training windows and the ``walk_forward.embargo_days`` sessions that follow
   the later one. Right after a retrain no such sessions exist, so a challenger waits some
   nights; a night with nothing to judge is a ``wait`` decision with the reason. Both
   ensembles predict the window with their saved models (``backtests.saved_ensemble``) and are
   backtested by the trade step's own windows over the same bars, capital and fill seed; the
   challenger is promoted only if it beats the champion on ``promotion.metric`` by more than
   ``promotion.margin``.

With ``promotion.policy: always`` step 3 is skipped: the challenger trained tonight is
promoted at once (a daily refit; what the multi-day rehearsal's parity with a walk-forward
of one-session test steps runs, ``tests/live/test_multiday_rehearsal.py``).

Every decision is written to the registry's promotion history and returned, as a record the
journal stores (``Decision.to_record``). The weekly universe screen is not applied here: both
ensembles trade every symbol over the window, which keeps the comparison about the models.
"""

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from backtests.config import BacktestConfig
from backtests.metrics import classification_metrics
from backtests.saved_ensemble import EnsembleSignals, predict_saved
from backtests.signal_outlook import SignalOutlook
from backtests.trade import measure, window_spec
from backtests.train import panel_from_bars, read_bars, train_fold
from backtests.trained import TrainedRun
from backtests.walkforward import universe
from backtests.window import run_windows
from catalog.store import EmptyCatalogError, MarketCatalog
from models.dataset import Panel
from models.features import ny_day
from models.pipeline import BarColumns
from models.promotion import (
    METRIC_KEYS,
    Decision,
    Ensemble,
    Evidence,
    PromotionStore,
    champion_or_pin_newest,
    find_ensembles,
    finite_or_none,
    next_fold,
    retrain_lock,
    utc_now,
)
from models.registry import ModelRegistry
from models.splits import Fold, ny_midnights_ns


@dataclass(frozen=True)
class NightlyInputs:
    """What one night reads once: the universe's bars and panel (every row causal, so rows
    after ``as_of`` are simply never selected), each row's label end, the signals' outlook
    and the sessions through ``as_of`` (New York dates, int days since 1970-01-01)."""

    config: BacktestConfig
    catalog: MarketCatalog
    symbols: list[str]
    bars: dict[str, BarColumns]
    panel: Panel
    label_end: np.ndarray
    outlook: SignalOutlook
    sessions: np.ndarray

    @classmethod
    def prepare(cls, config: BacktestConfig, catalog: MarketCatalog, as_of: dt.date) -> "NightlyInputs":
        symbols = universe(config, catalog)
        bars = read_bars(catalog, symbols)
        panel, label_end = panel_from_bars(bars, config)
        days = np.unique(ny_day(panel.ts_ns))
        sessions = days[days <= (as_of - dt.date(1970, 1, 1)).days]
        if len(sessions) == 0:
            raise EmptyCatalogError(f"catalog {catalog.path} holds no session on or before {as_of}")
        fit_only = Fold(index=0, train_start_ns=0, train_end_ns=0, test_start_ns=0, test_end_ns=0)
        # The screen picks what a test window trades; a nightly fold has none (module docstring).
        unscreened = msgspec.structs.replace(config, universe_screen=None)
        outlook = SignalOutlook.prepare(unscreened, catalog, symbols, [fit_only], panel.feature_names)
        return cls(config, catalog, symbols, bars, panel, label_end, outlook, sessions)

    @property
    def as_of(self) -> str:
        return _date(self.sessions[-1])

    @property
    def cutoff_ns(self) -> int:
        """New York midnight ending ``as_of``: nothing at or after it is known tonight."""
        return int(ny_midnights_ns(self.sessions[-1:] + 1)[0])


def retrain_and_evaluate(config: BacktestConfig, catalog: MarketCatalog, registry: ModelRegistry, as_of: dt.date,
                         work_dir: Path) -> Decision:
    """One night (module docstring): the decision, with the challenger trained tonight as
    ``trained``. ``work_dir``: the evaluation backtests' signals and engine reports. A night
    run again (a restarted scheduler) finds its ensemble already trained on the window and
    trains no twin. One at a time per registry (``retrain_lock``: RegistryBusyError)."""
    with retrain_lock(registry, as_of):
        champion_or_pin_newest(registry, list(config.signal_columns()))
        inputs = NightlyInputs.prepare(config, catalog, as_of)
        start, end = train_window(inputs)
        columns = set(config.signal_columns())
        done = [e for e in find_ensembles(registry)
                if (e.train_start_ns, e.train_end_ns) == (start, end) and columns <= set(e.versions)]
        trained = done[-1] if done else train_challenger(inputs, registry, work_dir)
        if config.promotion.policy == "always":
            return promote_unjudged(registry, trained, inputs.as_of)
        return judge_challenger(inputs, registry, work_dir, trained=trained)


def promote_unjudged(registry: ModelRegistry, trained: Ensemble, as_of: str) -> Decision:
    """``promotion.policy: always``: tonight's challenger becomes the champion without a
    comparison. A night run again after its promotion (a restarted scheduler) finds it the
    champion already and records a wait."""
    store = PromotionStore(registry.root)
    champion = store.champion()
    if champion.fold == trained.fold:
        return store.record(Decision(
            action="wait", at=utc_now(), as_of=as_of, champion=champion, previous=champion, trained=trained,
            reason=f"{trained.label()}, trained on this window, is the champion already (promotion.policy: always)"))
    return store.promote(trained, "promotion.policy: always: the challenger trained tonight trades from the next "
                         "session, unjudged", None, as_of=as_of, trained=trained, judged_against=champion)


def train_window(inputs: NightlyInputs) -> tuple[int, int]:
    """[start, end) UTC ns of the challenger's train window: the ``walk_forward.train_days``
    sessions ending at ``as_of`` (from the first session when anchored)."""
    wf = inputs.config.walk_forward
    days = inputs.sessions
    if len(days) < wf.train_days:
        raise EmptyCatalogError(f"catalog {inputs.catalog.path}: a challenger trains on {wf.train_days} sessions "
                                f"(walk_forward.train_days) but only {len(days)} exist through {inputs.as_of}")
    first = days[0] if wf.anchored else days[-wf.train_days]
    return int(ny_midnights_ns(np.array([first]))[0]), inputs.cutoff_ns


def train_challenger(inputs: NightlyInputs, registry: ModelRegistry, work_dir: Path) -> Ensemble:
    """Fit and save the next fold's ensemble on ``train_window``, by the train step."""
    start, end = train_window(inputs)
    fold = Fold(index=next_fold(registry), train_start_ns=start, train_end_ns=end, test_start_ns=end, test_end_ns=end)
    train_fold(fold, inputs.panel, inputs.label_end, inputs.config, registry,
               MarketCatalog(Path(work_dir) / "challenger-signals"), inputs.bars, inputs.outlook)
    return next(e for e in find_ensembles(registry) if e.fold == fold.index)


def evaluation_sessions(inputs: NightlyInputs, champion: Ensemble, challenger: Ensemble) -> np.ndarray:
    """The sessions through ``as_of`` neither ensemble saw: after the later training window's
    end and the embargo sessions that follow it (the window is the last N of them)."""
    after = max(champion.train_end_ns, challenger.train_end_ns)
    starts = ny_midnights_ns(inputs.sessions)
    return inputs.sessions[starts >= after][inputs.config.walk_forward.embargo_days:]


def judge_challenger(inputs: NightlyInputs, registry: ModelRegistry, work_dir: Path,
                     trained: Ensemble | None = None) -> Decision:
    """Judge the newest challenger whose evaluation window is complete (module docstring),
    promote it when it passes the guard, and record the decision."""
    config = inputs.config
    store = PromotionStore(registry.root)
    champion = store.champion()
    needed = config.promotion.evaluation_sessions
    judged = max((d.challenger.fold for d in store.history() if d.evidence is not None and d.challenger), default=-1)
    columns = config.signal_columns()
    candidates = [e for e in find_ensembles(registry)
                  if e.fold > max(champion.fold, judged) and set(columns) <= set(e.versions)]
    ready = [(c, s) for c in candidates if len(s := evaluation_sessions(inputs, champion, c)) >= needed]
    common = {"at": utc_now(), "as_of": inputs.as_of, "champion": champion, "previous": champion, "trained": trained}
    if not ready:
        if not candidates:
            reason = f"no challenger newer than the champion (fold {champion.fold}) awaits judgement"
        else:
            waiting = candidates[0]
            have = len(evaluation_sessions(inputs, champion, waiting))
            reason = (f"no evaluation window yet: challenger fold {waiting.fold} has {have} of the {needed} sessions "
                      f"(promotion.evaluation_sessions) after both training windows and the "
                      f"{config.walk_forward.embargo_days}-session embargo")
        return store.record(Decision(action="wait", reason=reason, challenger=candidates[0] if candidates else None,
                                     **common))
    challenger, sessions = ready[-1]
    evidence = compare(inputs, registry, champion, challenger, sessions[-needed:], Path(work_dir))
    passed, reason = evidence.passes()
    if passed:
        return store.promote(challenger, reason, evidence, as_of=inputs.as_of, trained=trained,
                             judged_against=champion)
    return store.record(Decision(action="refuse", reason=reason, challenger=challenger, evidence=evidence, **common))


def compare(inputs: NightlyInputs, registry: ModelRegistry, champion: Ensemble, challenger: Ensemble,
            sessions: np.ndarray, work_dir: Path) -> Evidence:
    """Both ensembles over ``sessions`` (consecutive): their signals, one backtest window
    each (run side by side, same fill seed) and their metrics."""
    config = inputs.config
    start, end = (int(v) for v in ny_midnights_ns(np.array([sessions[0], sessions[-1] + 1])))
    fold = Fold(index=0, train_start_ns=start, train_end_ns=start, test_start_ns=start, test_end_ns=end)
    in_window = np.flatnonzero((inputs.panel.ts_ns >= start) & (inputs.panel.ts_ns < end))
    runs, predicted = [], []
    for role, ensemble in (("champion", champion), ("challenger", challenger)):
        run = TrainedRun(run_dir=work_dir / "evaluation" / f"{role}-fold-{ensemble.fold}", config=config,
                         catalog_path=inputs.catalog.path.resolve(), symbols=tuple(inputs.symbols), folds=(fold,))
        signals = MarketCatalog(run.signal_catalog_path)
        signals.nautilus.write_data([i for i in inputs.catalog.instruments() if i.id.symbol.value in inputs.symbols])
        predicted.append(predict_saved(registry, ensemble, config.signal_columns(), config.weights(), inputs.panel,
                                       inputs.bars, in_window, inputs.outlook, signals))
        runs.append(run)
    specs = [dataclasses.replace(window_spec(run, fold, config.strategy, run.run_dir), name=run.run_dir.name)
             for run in runs]
    windows = run_windows(specs, workers=config.workers)
    metrics = [_metrics(inputs, run, fold, window, signals)
               for run, window, signals in zip(runs, windows, predicted, strict=True)]
    key = METRIC_KEYS[config.promotion.metric]
    return Evidence(metric=config.promotion.metric, margin=config.promotion.margin,
                    sessions=[_date(d) for d in sessions], window_start=_iso(start), window_end=_iso(end),
                    champion_value=metrics[0][key], challenger_value=metrics[1][key],
                    champion_metrics=metrics[0], challenger_metrics=metrics[1])


def _metrics(inputs: NightlyInputs, run: TrainedRun, fold: Fold, window, signals: EnsembleSignals) -> dict:
    """The backtest's trading metrics and the ensemble probability's AUC over the window's
    rows whose label was known by tonight."""
    trading = measure(run, [fold], [window], run.run_dir).trading
    known = inputs.label_end[signals.rows] < inputs.cutoff_ns
    quality = classification_metrics(inputs.panel.y[signals.rows][known], signals.ensemble[known])
    return finite_or_none({**trading, "auc": quality["auc"], "labelled_rows": quality["rows"]})


def _date(day: np.integer) -> str:
    return str(dt.date(1970, 1, 1) + dt.timedelta(days=int(day)))


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()
