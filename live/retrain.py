"""The post-close's nightly retrain, as both day-phase classes (live and rehearsed) run it.

The retrain itself is a ``RetrainHook`` that `sextant run` builds from the walk-forward's
nightly step (``backtests.nightly``, reached only through that hook: DESIGN's dependency
direction) and hands to the phases. Its record is a promotion ``Decision``
(``Decision.to_record``): it goes to the phase ledger, and to the journal's decisions when
the journal has a database. What the decision pins is loaded by the next pre-open
(``LiveConfig.model_dirs`` reads the champion when the node is built), so a promotion takes
effect the next morning, never during a session.
"""

from live.journal import Journal
from live.schedule import DayPlan
from live.scheduler import RetrainHook

DECISION_KIND = "promotion"
NOT_CONFIGURED = {"retrain": "none configured"}


def retrain_after_close(retrain: RetrainHook | None, plan: DayPlan, journal: Journal) -> dict:
    """The night's decision record (``journal_decision``: its id in the journal's database,
    when it has one); without a hook, a record saying none is configured."""
    if retrain is None:
        return dict(NOT_CONFIGURED)
    record = retrain(plan)
    if journal.dsn is None:
        return record
    return {**record, "journal_decision": journal.record_decision(DECISION_KIND, decision_subject(record), record,
                                                                   plan.day)}


def decision_subject(record: dict) -> str:
    """One line naming what the decision did: its action, the ensemble it was about and the
    champion after it (folds, the registry's names of ensembles)."""
    subject = record.get("challenger") or record.get("trained")
    about = f" fold {subject['fold']}" if subject else ""
    champion = record.get("champion")
    return f"{record['action']}{about}; champion fold {champion['fold']}" if champion else f"{record['action']}{about}"
