"""Champion and challengers of a model registry, and the history of every promotion decision.

An *ensemble* is the set of model versions trained together in one fold (the models, the
stacking meta-learner and the horizon models, ``horizons/fold-<k>``): what a live node must
load as a whole, since its parts were fitted on the same rows with the same feature fit. A
walk-forward run's registry holds one ensemble per fold; the nightly retrain adds the next
fold index to the same registry, so the fold number names an ensemble.

The *champion* is the ensemble pinned in ``promotion.json`` beside the models; live loads it
and nothing else, whatever is newer. Ensembles trained after the champion are *challengers*.
The file also keeps the lineage of champions (what a rollback returns to) and every decision
with its evidence. Every change is read-modify-write under a file lock and lands by
temp + rename, so a reader never sees a half-written file and two writers never lose one
another's decision.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import math
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import pandas as pd
from msgspec import Meta

from catalog.file_lock import FileLock, LockHeldError
from models.horizons import HORIZONS_DIR
from models.registry import ModelNotFoundError, ModelRegistry

PROMOTION_FILE = "promotion.json"
RETRAIN_LOCK = ".retrain.lock"
Metric = Literal["sharpe", "return", "auc"]
# promotion.metric -> the evidence's metric key (the backtest's names, plus the AUC)
METRIC_KEYS: dict[str, str] = {"sharpe": "sharpe", "return": "total_return", "auc": "auc"}


class PromotionError(Exception):
    """A promotion, pin or rollback that cannot be done; the message says why."""


class NoChampionError(PromotionError):
    """The registry has no pinned champion."""


class RegistryBusyError(PromotionError, LockHeldError):
    """Another retrain of the registry is running (``retrain_lock``); the message names it."""


def retrain_lock(registry: ModelRegistry, as_of: dt.date) -> FileLock:
    """One nightly retrain of a registry at a time: the operator's (the panel, `sextant models
    retrain`) and the scheduler's post-close would each train a twin challenger and judge the
    same one twice. The second is refused (RegistryBusyError names the first); the champion
    stays, and the first one's decision is the night's."""
    return FileLock(registry.root / RETRAIN_LOCK, f"a retrain of registry {registry.root} as of {as_of}",
                    busy=RegistryBusyError)


class PromotionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The guard of the nightly promotion. ``metric``: what the two ensembles are compared on
    over the evaluation window (the backtest's annualised Sharpe, its total return, or the
    AUC of the ensemble probability); ``margin``: how much the challenger must exceed the
    champion by, in the metric's units; ``evaluation_sessions``: how many of the most recent
    sessions the comparison covers (all of them after both training windows and the embargo;
    until that many exist the challenger waits). ``policy``: ``guarded`` promotes on that
    comparison only; ``always`` makes each night's challenger the champion at once, unjudged (a
    daily refit: the next session trades the models fitted on the sessions through the night
    before, as a walk-forward with a one-session test step does; metric, margin and
    evaluation_sessions are then unused)."""

    metric: Metric = "sharpe"
    margin: Annotated[float, Meta(ge=0.0)] = 0.0
    evaluation_sessions: Annotated[int, Meta(ge=1, le=250)] = 10
    policy: Literal["guarded", "always"] = "guarded"


class Ensemble(msgspec.Struct, frozen=True, kw_only=True):
    """``versions``: model name -> version; the windows are the fold's (UTC ISO, half-open)."""

    fold: int
    versions: dict[str, int]
    train_start: str
    train_end: str
    horizons_dir: str | None = None  # relative to the registry root

    @property
    def train_start_ns(self) -> int:
        return _ns(self.train_start)

    @property
    def train_end_ns(self) -> int:
        return _ns(self.train_end)

    def members(self) -> str:
        return ", ".join(f"{n} v{v:04d}" for n, v in sorted(self.versions.items()))

    def label(self) -> str:
        return f"fold {self.fold} ({self.members()})"


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """Both ensembles backtested over the same sessions: ``sessions`` (New York dates),
    ``window_start``/``window_end`` (UTC ISO, half-open), every metric of each, and the
    compared one's values (None: undefined, e.g. an AUC over one class)."""

    metric: Metric
    margin: float
    sessions: list[str]
    window_start: str
    window_end: str
    champion_value: float | None
    challenger_value: float | None
    champion_metrics: dict[str, float | None]
    challenger_metrics: dict[str, float | None]

    def passes(self) -> tuple[bool, str]:
        """Whether the challenger beats the champion by more than the margin, and why (not)."""
        champ, chall = self.champion_value, self.challenger_value
        if champ is None or chall is None:
            return False, f"{self.metric} is undefined over the window (champion {champ}, challenger {chall})"
        gain = chall - champ
        verdict = "beats" if gain > self.margin else "does not beat"
        return gain > self.margin, (f"challenger {self.metric} {chall:.4f} {verdict} champion {champ:.4f} by more "
                                    f"than the margin {self.margin:g} (gain {gain:+.4f}) over {len(self.sessions)} "
                                    f"sessions {self.sessions[0]}..{self.sessions[-1]}")


Action = Literal["pin", "promote", "refuse", "wait", "rollback"]


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the promotion history, and what the nightly retrain returns (the record
    a journal stores: ``to_record``). ``champion``: the champion after the decision;
    ``previous``: before it; ``challenger``: the ensemble evaluated, pinned or promoted;
    ``trained``: the challenger the nightly retrain fitted after deciding; ``wait``: nothing
    could be evaluated yet (the reason says why)."""

    action: Action
    reason: str
    at: str
    as_of: str | None = None
    champion: Ensemble | None = None
    previous: Ensemble | None = None
    challenger: Ensemble | None = None
    evidence: Evidence | None = None
    forced: bool = False
    trained: Ensemble | None = None

    def to_record(self) -> dict:
        return msgspec.to_builtins(self)


class _State(msgspec.Struct, kw_only=True):
    lineage: list[Ensemble] = []  # champions in the order they took over; the last one rules
    history: list[Decision] = []


def find_ensembles(registry: ModelRegistry) -> list[Ensemble]:
    """Every fold's ensemble in ``registry``, by fold. A name saved twice for one fold (not
    done by Sextant) contributes its newest version."""
    members: dict[int, dict[str, dict]] = {}
    for name in registry.names():
        for version in registry.versions(name):
            meta = registry.meta(name, version)
            members.setdefault(int(meta["fold"]), {})[name] = meta
    ensembles = []
    for fold, metas in sorted(members.items()):
        first = next(iter(metas.values()))
        horizons = f"{HORIZONS_DIR}/fold-{fold}"
        ensembles.append(Ensemble(
            fold=fold, versions={n: int(m["version"]) for n, m in sorted(metas.items())},
            train_start=first["train_start"], train_end=first["train_end"],
            horizons_dir=horizons if (registry.root / horizons).is_dir() else None))
    return ensembles


def ensemble_of(registry: ModelRegistry, name: str, version: int) -> Ensemble:
    """The ensemble ``name`` v``version`` was trained in. ModelNotFoundError when there is none."""
    registry.path(name, version)  # the registry's own message for an unknown name or version
    for ensemble in find_ensembles(registry):
        if ensemble.versions.get(name) == version:
            return ensemble
    raise ModelNotFoundError(f"model {name!r} v{version:04d} belongs to no ensemble (a newer version of it was "
                             "saved for the same fold)")


def next_fold(registry: ModelRegistry) -> int:
    """The fold index a new ensemble in ``registry`` takes (its horizons folder is then new too)."""
    return max((e.fold for e in find_ensembles(registry)), default=-1) + 1


class PromotionStore:
    """``promotion.json`` of the registry at ``root`` (module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / PROMOTION_FILE

    def champion(self) -> Ensemble:
        """The pinned champion; NoChampionError when nothing was ever pinned."""
        lineage = self._read().lineage
        if not lineage:
            raise NoChampionError(f"no champion is pinned in {self.root}; pin one with `sextant models pin NAME "
                                  f"VERSION --registry {self.root}`")
        return lineage[-1]

    def has_champion(self) -> bool:
        return bool(self._read().lineage)

    def history(self) -> list[Decision]:
        return self._read().history

    def latest_evaluation(self, fold: int) -> Decision | None:
        """The newest decision that evaluated the ensemble of ``fold`` as a challenger."""
        found = [d for d in self._read().history
                 if d.evidence is not None and d.challenger is not None and d.challenger.fold == fold]
        return found[-1] if found else None

    def pin(self, ensemble: Ensemble, reason: str, *, only_if_unpinned: bool = False) -> Decision | None:
        """Make ``ensemble`` the champion without an evaluation. ``only_if_unpinned``: do
        nothing (None) when a champion exists; checked under the lock, so two processes
        pinning a fresh registry at once pin once."""
        with self._changing() as state:
            if only_if_unpinned and state.lineage:
                return None
            return self._take_over(state, "pin", ensemble, reason)

    def promote(self, ensemble: Ensemble, reason: str, evidence: Evidence | None, *, forced: bool = False,
                as_of: str | None = None, trained: Ensemble | None = None,
                judged_against: Ensemble | None = None) -> Decision:
        """Make ``ensemble`` the champion. ``judged_against``: the champion the evidence was
        measured against; if another one was pinned meanwhile (the judgement takes minutes),
        the promotion is refused instead, in the same locked step."""
        with self._changing() as state:
            current = state.lineage[-1] if state.lineage else None
            if judged_against is not None and current != judged_against:
                refusal = Decision(action="refuse", at=utc_now(), as_of=as_of, champion=current, previous=current,
                                   challenger=ensemble, evidence=evidence, trained=trained,
                                   reason=f"the champion changed to fold {current.fold if current else '-'} while "
                                          f"fold {ensemble.fold} was judged against fold {judged_against.fold}")
                state.history.append(refusal)
                return refusal
            return self._take_over(state, "promote", ensemble, reason, evidence=evidence, forced=forced,
                                   as_of=as_of, trained=trained)

    def rollback(self) -> Decision:
        """Restore the champion before the current one; the history keeps the rolled-back one."""
        with self._changing() as state:
            if len(state.lineage) < 2:
                raise PromotionError(f"no previous champion to roll back to in {self.root} "
                                     f"({len(state.lineage)} champion(s) so far)")
            current = state.lineage.pop()
            decision = Decision(action="rollback", reason=f"rolled back from fold {current.fold}", at=utc_now(),
                                champion=state.lineage[-1], previous=current, challenger=current)
            state.history.append(decision)
            return decision

    def record(self, decision: Decision) -> Decision:
        """Append a decision that changes no champion (a refusal, a wait)."""
        if decision.action not in ("refuse", "wait"):
            raise ValueError(f"record() takes refusals and waits; {decision.action!r} goes through its own method")
        with self._changing() as state:
            state.history.append(decision)
        return decision

    def _take_over(self, state: _State, action: Action, ensemble: Ensemble, reason: str, **fields) -> Decision:
        previous = state.lineage[-1] if state.lineage else None
        state.lineage.append(ensemble)
        decision = Decision(action=action, reason=reason, at=utc_now(), champion=ensemble, previous=previous,
                            challenger=ensemble, **fields)
        state.history.append(decision)
        return decision

    def _read(self) -> _State:
        if not self.path.is_file():
            return _State()
        return msgspec.json.decode(self.path.read_bytes(), type=_State)

    @contextmanager
    def _changing(self) -> Iterator[_State]:
        """The state to change, written back atomically when the block ends without error."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{PROMOTION_FILE}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            yield state
            tmp = self.root / f".{PROMOTION_FILE}.{uuid.uuid4().hex}"
            tmp.write_bytes(msgspec.json.format(msgspec.json.encode(state), indent=2))
            os.replace(tmp, self.path)


def champion_or_pin_newest(registry: ModelRegistry, names: list[str]) -> tuple[Ensemble, Decision | None]:
    """The pinned champion; a registry without one gets its newest ensemble holding every one
    of ``names`` pinned explicitly (recorded in the history), and that decision is returned so
    the caller can say so. PromotionError when no ensemble holds them all."""
    store = PromotionStore(registry.root)
    if store.has_champion():
        return store.champion(), None
    complete = [e for e in find_ensembles(registry) if set(names) <= set(e.versions)]
    if not complete:
        raise PromotionError(f"no ensemble in {registry.root} holds every model of {sorted(names)}")
    decision = store.pin(complete[-1], "automatic: the registry had no champion, its newest ensemble was pinned",
                         only_if_unpinned=True)
    return store.champion(), decision


PINNED_BY_HAND = "pinned by hand"


def pin_by_hand(store: PromotionStore, ensemble: Ensemble) -> Decision:
    """``sextant models pin`` (and the panel's pin): ``ensemble`` becomes the champion without
    an evaluation; live loads it at the next pre-open."""
    return store.pin(ensemble, PINNED_BY_HAND)


def promote_by_hand(store: PromotionStore, ensemble: Ensemble, *, force: bool) -> Decision:
    """``sextant models promote``: promote ``ensemble`` on its latest evaluation's evidence.
    A guard that says no (or no evaluation at all) refuses unless ``force``; a forced
    promotion is marked so in the history."""
    if store.has_champion() and store.champion().fold == ensemble.fold:
        raise PromotionError(f"{ensemble.label()} is already the champion")
    evaluation = store.latest_evaluation(ensemble.fold)
    if evaluation is None or evaluation.evidence is None:
        if not force:
            raise PromotionError(f"{ensemble.label()} was never evaluated against a champion; --force promotes it "
                                 "without evidence")
        return store.promote(ensemble, "forced by hand without an evaluation", None, forced=True)
    passed, why = evaluation.evidence.passes()
    if not passed and not force:
        raise PromotionError(f"the guard refuses {ensemble.label()}: {why}; --force promotes it anyway")
    return store.promote(ensemble, f"{'by hand' if passed else 'forced by hand'}: {why}", evaluation.evidence,
                         forced=not passed)


def finite_or_none(metrics: Mapping[str, float]) -> dict[str, float | None]:
    """Metrics as JSON keeps them: a NaN or infinity (an undefined AUC, an unbounded profit
    factor) becomes None."""
    return {k: float(v) if math.isfinite(v) else None for k, v in metrics.items()}


def utc_now() -> str:
    """When a decision was taken (UTC ISO); ``as_of`` says for which session."""
    return dt.datetime.now(dt.UTC).isoformat()


def _ns(iso: str) -> int:
    return int(pd.Timestamp(iso).value)
