"""The Models page (/models): the pinned champion and the challengers with their evidence,
pin / promote / roll back (the commands `sextant models` runs; what is pinned trades from the
next pre-open), a retrain started by hand (a background job, its progress live), the ensemble
weights (edited through the control: validated by the strategy settings, applied from the
next signal, journaled) and each model's live accuracy and AUC."""

import asyncio
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from live.control import ControlRefused
from live.operations.day_jobs import RETRAIN, retrain_job
from live.operations.jobs import JobRunningError
from live.operations.listeners import listener_of
from live.operations.model_board import (
    decision_history,
    decision_line,
    ensembles_with_roles,
    journaled_promotions,
    pin_fold,
    promote_fold,
    rollback,
)
from live.operations.model_scores import ModelScores
from live.panel.context import PanelContext
from live.panel.operations import trading_day
from live.panel.pages import json_body, ok, perform, refused, render_page
from models.promotion import Decision, PromotionError

HISTORY_SHOWN = 10
NEXT_PRE_OPEN = "the node loads it at the next pre-open; today's session keeps trading the models it started with"


def models_state(ctx: PanelContext) -> dict:
    """Everything the page shows (blocking: reads the registry and the journal)."""
    registry = None if ctx.config is None else Path(ctx.config.models.registry)
    scores = listener_of(ctx.row_listeners, ModelScores)
    job = None if ctx.jobs is None else ctx.jobs.status(RETRAIN)
    journal_dsn = None if ctx.journal is None else ctx.journal.dsn
    return {
        "registry": None if registry is None else str(registry),
        "ensembles": [] if registry is None else ensembles_with_roles(registry),
        "history": [] if registry is None else decision_history(registry, HISTORY_SHOWN),
        "journaled": [] if journal_dsn is None else journaled_promotions(journal_dsn, HISTORY_SHOWN),
        "weights": _weights(ctx),
        "scores": None if scores is None else scores.snapshot(),
        "retrain_configured": ctx.retrain is not None,
        "job": None if job is None else job.payload(),
    }


def _weights(ctx: PanelContext) -> dict[str, float]:
    if ctx.control is not None:
        return dict(ctx.control.weights)
    return {} if ctx.config is None else dict(ctx.config.strategy.weights)


def routes(ctx: PanelContext) -> list[web.RouteDef]:
    async def page(request: web.Request) -> web.Response:
        state = await asyncio.to_thread(models_state, ctx)
        return render_page(request, "models.html", read_only=ctx.control is None, next_pre_open=NEXT_PRE_OPEN,
                           **state)

    async def api_models(request: web.Request) -> web.Response:
        return ok(**await asyncio.to_thread(models_state, ctx))

    async def weights(request: web.Request) -> web.Response:
        given = (await json_body(request)).get("weights")
        if not isinstance(given, dict) or not given:
            return refused(400, "'weights' must map model names to numbers", "strategy.weights")

        def apply() -> None:
            ctx.control.set_weights(_numbers(given))

        return await perform(request, "set weights", apply, weights=given)

    def registry_command(action: str, command: Callable[[Path, dict], Decision]):
        async def handler(request: web.Request) -> web.Response:
            body = await json_body(request)
            registry = Path(ctx.config.models.registry)

            def run() -> dict:
                try:
                    decision = command(registry, body)
                except PromotionError as e:
                    raise ControlRefused(str(e), field="fold") from None
                line = decision_line(decision)
                return {"message": f"{decision.action} {line['subject']}: champion fold {line['champion']}; "
                                   f"{NEXT_PRE_OPEN}", "decision": line}

            return await perform(request, action, run, **body)
        return handler

    async def retrain(request: web.Request) -> web.Response:
        if ctx.retrain is None:
            return refused(409, "no retrain is configured: set 'models.retrain' in the live config")
        job = retrain_job(ctx.config, ctx.retrain, ctx.journal, trading_day(ctx))
        try:
            status = ctx.jobs.start(job)
        except JobRunningError as e:
            await asyncio.to_thread(ctx.record_action, "retrain", f"refused: {e}", {})
            return refused(409, str(e))
        await asyncio.to_thread(ctx.record_action, "retrain", "started", {"day": trading_day(ctx).isoformat()})
        return ok(job=status.payload())

    return [
        web.get("/models", page), web.get("/api/models", api_models),
        web.post("/api/models/weights", weights),
        web.post("/api/models/pin", registry_command("pin", lambda root, body: pin_fold(root, _fold(body)))),
        web.post("/api/models/promote", registry_command(
            "promote", lambda root, body: promote_fold(root, _fold(body), force=body.get("force") is True))),
        web.post("/api/models/rollback", registry_command("rollback", lambda root, body: rollback(root))),
        web.post("/api/models/retrain", retrain),
    ]


def _numbers(weights: dict) -> dict[str, float]:
    """The form's values as numbers; one that is not is refused naming its field."""
    parsed = {}
    for name, value in weights.items():
        try:
            parsed[str(name)] = float(value)
        except (TypeError, ValueError):
            raise ControlRefused(f"{value!r} is not a number", field=f"strategy.weights.{name}") from None
    return parsed


def _fold(body: dict) -> int:
    fold = body.get("fold")
    if isinstance(fold, bool) or not isinstance(fold, int):
        raise ControlRefused(f"'fold' must be an ensemble's fold number, got {fold!r}", field="fold")
    return fold
