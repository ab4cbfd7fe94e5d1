"""The row listeners behind the Models and Data pages, built once for a panel: the models'
live scores (on the label the champion was trained on) and the feed monitor (reading the
running node through the control). Whoever builds the ``PanelContext`` appends them to its
``row_listeners``; the pages find them there by type."""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from live.journal.sinks import Sink
from live.operations.feed import FeedMonitor, read_feed
from live.operations.model_scores import ModelScores, label_rule_of
from models.labels import LabelRule
from models.promotion import PromotionStore
from models.registry import ModelRegistry

if TYPE_CHECKING:
    from live.control import TradingControl
    from live.settings import LiveConfig

T = TypeVar("T")


def operation_listeners(config: "LiveConfig | None", control: "TradingControl | None") -> list[Sink]:
    """[ModelScores, FeedMonitor] for a run of ``config`` (None: a read-only panel, whose
    scores use the default label and whose feed shows the journal's bars only)."""
    rule = LabelRule() if config is None else champion_label_rule(config)
    read = (lambda: None) if control is None else (lambda: control.call_on_node(read_feed))
    return [ModelScores(rule), FeedMonitor(read, symbols=[] if config is None else list(config.universe or ()))]


def champion_label_rule(config: "LiveConfig") -> LabelRule:
    """The label the pinned champion's weighted models were trained on; the default while
    nothing is pinned. Only read: a panel changes the registry on the operator's command only
    (``LiveConfig.champion`` would pin one)."""
    root = Path(config.models.registry)
    store = PromotionStore(root)
    if not store.has_champion():
        return LabelRule()
    versions = store.champion().versions
    registry = ModelRegistry(root)
    return label_rule_of({name: registry.path(name, versions[name]) for name in config.strategy.weights
                          if name in versions})


def listener_of(listeners: Sequence[Sink], kind: type[T]) -> T | None:
    """The first listener of ``kind`` (None: the panel was built without it)."""
    return next((listener for listener in listeners if isinstance(listener, kind)), None)
