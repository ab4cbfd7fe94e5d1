"""A trained walk-forward run, as the trade step needs it: the hand-over from train to trade.

Training writes the models' test-window probabilities as MLSignal rows into the run's own
signal catalog; from then on every backtest of the run (the walk-forward's own, a tuning
trial's) is a replay of those fixed signals. ``train.json`` records what such a replay needs
besides the signals: the bar catalog, the universe, the fold windows and the config the run
was trained with (its venue costs, seeds and default strategy), so a later process trades the
run without refitting or recomputing a fold.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from backtests.config import BacktestConfig, parse_config
from models.splits import Fold

MANIFEST = "train.json"


@dataclass(frozen=True)
class TrainedRun:
    run_dir: Path
    config: BacktestConfig
    catalog_path: Path  # the bar catalog, absolute: a replay may run from another directory
    symbols: tuple[str, ...]
    folds: tuple[Fold, ...]

    @property
    def signal_catalog_path(self) -> Path:
        return self.run_dir / "signals"

    @property
    def models(self) -> tuple[str, ...]:
        """The models (and meta-learner) whose probabilities the stored signals carry."""
        return self.config.signal_columns()

    def save(self) -> None:
        manifest = {
            "catalog": str(self.catalog_path),
            "symbols": list(self.symbols),
            "folds": [asdict(f) for f in self.folds],
            "config": self.config.to_dict(),
        }
        (self.run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> "TrainedRun":
        """The run trained into ``run_dir``; the signals are found beside its manifest, so a
        run directory may be moved or copied as a whole."""
        manifest = json.loads((Path(run_dir) / MANIFEST).read_text())
        return cls(
            run_dir=Path(run_dir),
            config=parse_config(manifest["config"], str(Path(run_dir) / MANIFEST)),
            catalog_path=Path(manifest["catalog"]),
            symbols=tuple(manifest["symbols"]),
            folds=tuple(Fold(**f) for f in manifest["folds"]),
        )


def ny_date(ns: int) -> str:
    """The New York date of a UTC nanosecond stamp: folds are laid out in NYSE sessions."""
    return str(pd.Timestamp(ns, tz="UTC").tz_convert("America/New_York").date())
