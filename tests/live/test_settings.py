"""Live settings: the YAML names its bad keys, the universe comes from the models, and real
money is refused unless every guard is satisfied (file, both flags, live host, a live key, a
Polygon key); a paper config never reaches the live host however it is spelled."""

import asyncio
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from adapters.alpaca.config import AlpacaExecClientConfig
from backtests.config import load_config
from live.settings import LiveConfigError, check_mode, load_live_config
from models.registry import ModelRegistry
from models.zoo import build_model
from sextant.cli import app
from tests.e2e.test_cli import squash
from tests.models.test_zoo import synthetic_panel

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER_ENV = {"ALPACA_API_KEY_ID": "PKTEST", "ALPACA_API_SECRET_KEY": "s", "POLYGON_API_KEY": "p"}
LIVE_ENV = {"ALPACA_API_KEY_ID": "AKTEST", "ALPACA_API_SECRET_KEY": "s", "POLYGON_API_KEY": "p"}
TRAINED_ON = ["SPY", "QQQ", "IWM"]
NO_KEYS = {"ALPACA_API_KEY_ID": "", "ALPACA_API_SECRET_KEY": "", "APCA_API_KEY_ID": "",
           "APCA_API_SECRET_KEY": "", "POLYGON_API_KEY": "", "MASSIVE_API_KEY": ""}

# Every spelling of Alpaca's live host a paper config was seen to reach it with, and more.
LIVE_SPELLINGS = [
    "https://api.alpaca.markets",
    "https://api.alpaca.markets/",
    "https://api.alpaca.markets:443",
    "https://api.alpaca.markets:443/",
    "https://API.ALPACA.MARKETS",
    "HTTPS://Api.Alpaca.Markets",
    "http://api.alpaca.markets",
    "https://api.alpaca.markets:8443",
    "https://api.alpaca.markets.",
]
# Not usable as written (a client could read them differently, or they are no Alpaca host).
REFUSED_ANYWHERE = [
    "https://api.alpaca.markets/v2",
    "https://paper-api.alpaca.markets/v2/",
    "https://paper-api.alpaca.markets@api.alpaca.markets",
    "https://user:pass@paper-api.alpaca.markets",
    " https://paper-api.alpaca.markets",
    "https://paper-api.alpaca.markets ",
    "https://paper-api.alpaca.markets\n",
    "https://api.alpaca.markets\t",
    "https://api%2ealpaca.markets",
    "https://api\u3002alpaca.markets",  # an ideographic full stop: IDNA maps it to "."
    "https://paper-api.alpaca.markets?x=1",
    "https://paper-api.alpaca.markets#frag",
    "https://paper-api.alpaca.markets:99999",
    "https://broker-api.alpaca.markets",
    "https://data.alpaca.markets",
    "ftp://x",
    "paper-api.alpaca.markets",
    "",
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """A registry holding the three models the shipped configs weigh, trained on TRAINED_ON."""
    root = tmp_path_factory.mktemp("registry")
    panel = synthetic_panel(n_bars=300)
    reg = ModelRegistry(root)
    for name in ("lightgbm", "xgboost", "lstm"):
        model = build_model("lightgbm", {"n_estimators": 5}, name=name)  # only names are read here
        model.fit(panel, panel.usable_rows(require_label=True), seed=0)
        reg.save(model, {"train_start": "2024-01-02", "train_end": "2024-02-01", "fold": 0, "metrics": {},
                         "data_hash": "x", "universe": TRAINED_ON})
    return root


def shipped(tmp_path: Path, which: str, registry: Path, **changes) -> Path:
    """A copy of configs/<which>.yaml on ``registry``, with ``a__b=value`` changes."""
    raw = yaml.safe_load((CONFIGS / f"{which}.yaml").read_text())
    raw["models"]["registry"] = str(registry)
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = tmp_path / f"{which}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_configs_load_and_trade_what_the_models_learned(tmp_path, registry):
    paper = load_live_config(shipped(tmp_path, "paper", registry))
    live = load_live_config(shipped(tmp_path, "live", registry))
    assert paper.mode == "paper" and live.mode == "live"
    assert paper.universe == live.universe == TRAINED_ON
    assert paper.strategy == live.strategy and paper.strategy.risk.stop_loss == 0.02
    settings = paper.strategy_settings(["SPY.ALPACA"])
    assert settings["external_order_claims"] == ["SPY.ALPACA"] and settings["entry_threshold"] == 0.65
    assert settings["weights"] == {"lightgbm": 1.0, "xgboost": 1.0, "lstm": 1.0}


def test_one_strategy_type_with_the_same_bounds_in_both_configs(tmp_path, registry):
    """The live and the walk-forward configs hold the same StrategySettings."""
    live = load_live_config(shipped(tmp_path, "live", registry))
    assert live.strategy == load_config(CONFIGS / "walkforward.yaml").strategy


def test_an_explicit_universe_overrides_the_models(tmp_path, registry):
    assert load_live_config(shipped(tmp_path, "paper", registry, universe=["SPY"])).universe == ["SPY"]


def test_models_on_different_universes_need_an_explicit_list(tmp_path, registry):
    mixed = tmp_path / "mixed"
    panel = synthetic_panel(n_bars=300)
    reg = ModelRegistry(mixed)
    for name, universe in (("lightgbm", ["SPY"]), ("xgboost", ["QQQ"])):
        model = build_model("lightgbm", {"n_estimators": 5}, name=name)
        model.fit(panel, panel.usable_rows(require_label=True), seed=0)
        reg.save(model, {"train_start": "a", "train_end": "b", "fold": 0, "metrics": {}, "data_hash": "x",
                         "universe": universe})
    weights = {"lightgbm": 1.0, "xgboost": 1.0}
    with pytest.raises(LiveConfigError, match=r"different universes \(lightgbm: SPY; xgboost: QQQ\).*'universe'"):
        load_live_config(shipped(tmp_path, "paper", mixed, strategy__weights=weights))
    explicit = load_live_config(shipped(tmp_path, "paper", mixed, strategy__weights=weights, universe=["SPY", "QQQ"]))
    assert explicit.universe == ["SPY", "QQQ"]
    normalised = load_live_config(shipped(tmp_path, "paper", mixed, strategy__weights=weights,
                                          universe=[" spy", "QQQ", "SPY"]))
    assert normalised.universe == ["SPY", "QQQ"]


def test_a_missing_registry_or_model_is_named(tmp_path, registry):
    with pytest.raises(LiveConfigError, match=r"'models.registry': .*nope is not a model registry"):
        load_live_config(shipped(tmp_path, "paper", tmp_path / "nope"))
    with pytest.raises(LiveConfigError, match=r"'strategy.weights' names a model the registry lacks: .*'gru'"):
        load_live_config(shipped(tmp_path, "paper", registry, strategy__weights={"gru": 1.0}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"strategy__risk__stop_loss": "two"}, r"'strategy.risk.stop_loss': expected `float`, got `str`", id="stop-loss-text"),
        pytest.param({"polygon__feed": "x"}, r"unknown key 'polygon.feed'", id="unknown-polygon-key"),
        pytest.param({"universe": []}, r"'universe': expected `array` of length >= 1", id="empty-universe"),
        pytest.param({"universe": ["S000", "BRK/B"]}, r"'universe': invalid symbol 'BRK/B'", id="bad-symbol"),
        pytest.param({"strategy__weights": {"lightgbm": 0.0}}, "'strategy.weights': needs at least one model with a positive", id="no-positive-weight"),
        # the bounds the walk-forward config has always had (item 18)
        pytest.param({"strategy__entry_threshold": 1.5}, r"'strategy.entry_threshold': expected `float` < 1.0", id="entry-1.5"),
        pytest.param({"strategy__entry_threshold": 0.2}, r"'strategy.entry_threshold': expected `float` > 0.5", id="entry-0.2"),
        pytest.param({"strategy__weights": {"lightgbm": -1.0, "xgboost": 1.0}}, r"'strategy.weights.lightgbm': must be between 0", id="negative-weight"),
        pytest.param({"warmup_sessions": -3}, r"'warmup_sessions': expected `int` >= 0", id="warmup-negative"),
        pytest.param({"warmup_sessions": True}, r"'warmup_sessions': expected `int`, got `bool`", id="warmup-bool"),
        pytest.param({"close_wait_ms": 0}, r"'close_wait_ms': expected `int` >= 1", id="close-wait-zero"),
        # names become journal directories under --out (item 16)
        pytest.param({"name": "../../trav"}, r"'name': expected `str` that is 1-100 letters", id="name-climbs"),
        pytest.param({"name": ""}, r"'name': expected `str` that is 1-100 letters", id="name-empty"),
        pytest.param({"alpaca__base_url": "ftp://x"}, r"'alpaca.base_url': 'ftp://x' must start with http:// or https://", id="alpaca-ftp"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, registry, changes, message):
    with pytest.raises(LiveConfigError, match=message):
        load_live_config(shipped(tmp_path, "paper", registry, **changes))


def test_a_key_given_twice_names_the_key_and_line(tmp_path, registry):
    path = shipped(tmp_path, "paper", registry)
    path.write_text(path.read_text() + "mode: live\n")
    with pytest.raises(LiveConfigError, match=r"line \d+, column 1: duplicate key 'mode' \(first given at line \d+\)"):
        load_live_config(path)


@pytest.mark.parametrize("url", LIVE_SPELLINGS)
def test_a_paper_config_never_reaches_the_live_host(tmp_path, registry, url):
    """Refused at load, whatever the flags and keys, and again by the execution client."""
    with pytest.raises(LiveConfigError, match="'alpaca.base_url': paper trading, but .* is Alpaca's live"):
        load_live_config(shipped(tmp_path, "paper", registry, alpaca__base_url=url))
    with pytest.raises(ValueError, match="is Alpaca's live"):
        AlpacaExecClientConfig(base_url=url, paper=True, allow_custom_host=True)


@pytest.mark.parametrize("url", LIVE_SPELLINGS)
def test_a_live_config_accepts_every_spelling_of_the_live_host(tmp_path, registry, url):
    live = load_live_config(shipped(tmp_path, "live", registry, alpaca__base_url=url))
    check_mode(live, live_flag=True, understood=True, environ=LIVE_ENV)


@pytest.mark.parametrize("url", REFUSED_ANYWHERE)
@pytest.mark.parametrize("which", ["paper", "live"])
def test_ambiguous_or_foreign_urls_are_refused_even_with_custom_hosts_allowed(tmp_path, registry, url, which):
    with pytest.raises(LiveConfigError, match="'alpaca.base_url': "):
        load_live_config(shipped(tmp_path, which, registry, alpaca__base_url=url, alpaca__allow_custom_host=True))


def test_a_custom_host_needs_the_explicit_flag_and_never_means_live(tmp_path, registry):
    custom = "https://alpaca-proxy.example.com:8443"
    with pytest.raises(LiveConfigError, match="neither Alpaca's paper host .* nor loopback; set allow_custom_host"):
        load_live_config(shipped(tmp_path, "paper", registry, alpaca__base_url=custom))
    allowed = load_live_config(shipped(tmp_path, "paper", registry, alpaca__base_url=custom,
                                       alpaca__allow_custom_host=True))
    check_mode(allowed, live_flag=False, understood=False, environ=PAPER_ENV)
    with pytest.raises(LiveConfigError, match="not a paper key"):  # a proxy could forward to the live API
        check_mode(allowed, live_flag=False, understood=False, environ=LIVE_ENV)
    with pytest.raises(LiveConfigError, match="live trading needs Alpaca's live host"):
        load_live_config(shipped(tmp_path, "live", registry, alpaca__base_url=custom, alpaca__allow_custom_host=True))


def test_the_stream_url_must_reach_the_same_account(tmp_path, registry):
    with pytest.raises(LiveConfigError, match="stream_url .* reaches a live endpoint but base_url .* a paper one"):
        load_live_config(shipped(tmp_path, "paper", registry, alpaca__stream_url="wss://API.alpaca.markets/stream"))


def test_a_loopback_sandbox_is_paper_and_takes_its_own_keys(tmp_path, registry):
    for url in ("http://127.0.0.1:8766", "http://localhost:8766/", "http://[::1]:8766"):
        sandbox = load_live_config(shipped(tmp_path, "paper", registry, alpaca__base_url=url))
        check_mode(sandbox, live_flag=False, understood=False,
                   environ={**PAPER_ENV, "ALPACA_API_KEY_ID": "sandbox-key"})


def test_paper_needs_a_paper_key_and_refuses_the_live_flag(tmp_path, registry):
    paper = load_live_config(shipped(tmp_path, "paper", registry))
    check_mode(paper, live_flag=False, understood=False, environ=PAPER_ENV)
    with pytest.raises(LiveConfigError, match="not a paper key"):
        check_mode(paper, live_flag=False, understood=False, environ=LIVE_ENV)
    with pytest.raises(LiveConfigError, match="ALPACA_API_KEY_ID"):
        check_mode(paper, live_flag=False, understood=False, environ={"POLYGON_API_KEY": "p"})
    with pytest.raises(LiveConfigError, match="POLYGON_API_KEY"):
        check_mode(paper, live_flag=False, understood=False, environ={k: v for k, v in PAPER_ENV.items()
                                                                       if k != "POLYGON_API_KEY"})
    with pytest.raises(LiveConfigError, match="config says mode: paper"):
        check_mode(paper, live_flag=True, understood=True, environ=PAPER_ENV)


def test_real_money_needs_every_guard(tmp_path, registry):
    live = load_live_config(shipped(tmp_path, "live", registry))
    check_mode(live, live_flag=True, understood=True, environ=LIVE_ENV)
    with pytest.raises(LiveConfigError, match="needs --live and --i-understand-real-money"):
        check_mode(live, live_flag=False, understood=False, environ=LIVE_ENV)
    with pytest.raises(LiveConfigError, match="needs --i-understand-real-money"):
        check_mode(live, live_flag=True, understood=False, environ=LIVE_ENV)
    with pytest.raises(LiveConfigError, match="paper key"):
        check_mode(live, live_flag=True, understood=True, environ=PAPER_ENV)
    with pytest.raises(LiveConfigError, match="paper key"):  # a paper key however it is spelled
        check_mode(live, live_flag=True, understood=True,
                   environ={**PAPER_ENV, "ALPACA_API_KEY_ID": " pk" + PAPER_ENV["ALPACA_API_KEY_ID"][2:]})
    with pytest.raises(LiveConfigError, match="ALPACA_API_KEY_ID"):
        check_mode(live, live_flag=True, understood=True, environ={"POLYGON_API_KEY": "p"})
    for paper_host in ("https://paper-api.alpaca.markets", "https://PAPER-API.alpaca.markets:443/",
                       "http://127.0.0.1:8766"):
        with pytest.raises(LiveConfigError, match="live trading needs Alpaca's live host"):
            load_live_config(shipped(tmp_path, "live", registry, alpaca__base_url=paper_host))


def test_cli_refuses_before_building_a_node(tmp_path, registry):
    runner = CliRunner()
    live_yaml = shipped(tmp_path, "live", registry)
    no_flags = runner.invoke(app, ["live", str(live_yaml)], env=LIVE_ENV)
    assert no_flags.exit_code == 2
    assert "needs--liveand--i-understand-real-money" in squash(no_flags.output)
    no_keys = runner.invoke(app, ["live", str(live_yaml), "--live", "--i-understand-real-money"], env=NO_KEYS)
    assert no_keys.exit_code == 2 and "ALPACA_API_KEY_ID" in no_keys.output
    spelled = shipped(tmp_path, "paper", registry, alpaca__base_url="https://api.alpaca.markets:443")
    bypass = runner.invoke(app, ["live", str(spelled)], env=LIVE_ENV)
    assert bypass.exit_code == 2 and "Alpaca'slive(real-money)host" in squash(bypass.output)
    live_key = runner.invoke(app, ["live", str(shipped(tmp_path, "paper", registry))], env=LIVE_ENV)
    assert live_key.exit_code == 2 and "notapaperkey" in squash(live_key.output)
    rehearse_live = runner.invoke(app, ["live", str(CONFIGS / "paper.yaml"), "--rehearse", "--live"])
    assert rehearse_live.exit_code == 2 and "drop --live" in rehearse_live.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{file}"], "--out{file}:{file}isafile"),
        (["--out", "{file}/sub"], "--out{file}/sub:{file}isafile"),
        (["--rehearse", "--day", "31/12/2024"], "--day'31/12/2024'isnotadate"),
    ],
)
def test_cli_option_mistakes_are_messages(tmp_path, registry, args, message):
    file = tmp_path / "a-file"
    file.write_text("x")
    args = [a.format(file=file) for a in args]
    result = CliRunner().invoke(app, ["live", str(shipped(tmp_path, "paper", registry)), *args], env=PAPER_ENV)
    assert result.exit_code == 2, result.output
    assert message.format(file=file) in squash(result.output)
    assert "Traceback" not in result.output


def test_cli_config_path_mistakes_are_messages(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    for path, message in ((tmp_path, "isadirectory"), (latin1, "notUTF-8text")):
        result = CliRunner().invoke(app, ["live", str(path)], env=PAPER_ENV)
        assert result.exit_code == 2 and message in squash(result.output), result.output


def test_a_programming_error_in_a_rehearsal_keeps_its_traceback(tmp_path, registry, monkeypatch):
    """The command catches the project's own error types only: a ValueError from a bug is not
    turned into a one-line message (it used to be)."""
    import live.rehearsal

    def broken(*_args, **_kwargs):
        raise ValueError("a bug, not a user mistake")

    monkeypatch.setattr(live.rehearsal, "rehearse", broken)
    result = CliRunner().invoke(app, ["live", str(shipped(tmp_path, "paper", registry)), "--rehearse",
                                      "--day", "2024-12-31", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert "error:" not in result.output


# -- --params: a tuning study's best.yaml over the strategy section -------------------------------


def best_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "best.yaml"
    path.write_text(text)
    return path


def test_params_reach_the_nodes_strategy(tmp_path, registry, monkeypatch):
    """The overlay is what the built node's EnsembleStrategy trades; the fields it leaves out
    stay the config's."""
    from live.node import build_node, node_config

    for name, value in PAPER_ENV.items():  # the clients read their keys when the node is built
        monkeypatch.setenv(name, value)

    params = best_yaml(tmp_path, "strategy:\n  weights: {lightgbm: 0.6, xgboost: 0.4}\n  entry_threshold: 0.71\n"
                                 "  risk: {stop_loss: 0.015}\n")
    config = load_live_config(shipped(tmp_path, "paper", registry, strategy__risk__take_profit=0.05), params)
    loop = asyncio.new_event_loop()  # the node's own: other tests leave no current loop behind
    node = build_node(config, node_config(config, log_level="ERROR"), loop=loop)
    try:
        (strategy,) = node.trader.strategies()
        assert strategy.config.weights == {"lightgbm": 0.6, "xgboost": 0.4}
        assert strategy.config.entry_threshold == 0.71
        assert strategy.config.risk.stop_loss == 0.015 and strategy.config.risk.take_profit == 0.05
        assert strategy.config.allow_short is True
    finally:
        node.dispose()
        loop.close()
    assert config.model_dirs().keys() == {"lightgbm", "xgboost"}  # only the weighted models are loaded


def test_params_weighing_a_model_the_registry_lacks_name_the_params_file(tmp_path, registry):
    params = best_yaml(tmp_path, "strategy:\n  weights: {lightgbm: 0.5, gru: 0.5}\n")
    with pytest.raises(LiveConfigError, match=rf"^{params}: 'strategy.weights' names a model the registry lacks: .*'gru'"):
        load_live_config(shipped(tmp_path, "paper", registry), params)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("strategy:\n  entry_threshold: 0.4\n", "'strategy.entry_threshold':expected`float`>0.5", id="bound"),
        pytest.param("strategy:\n  risk: {stoploss: 0.01}\n", "unknownkey'strategy.risk.stoploss'", id="unknown-key"),
    ],
)
def test_cli_bad_params_are_one_line_before_any_node(tmp_path, registry, text, message):
    params = best_yaml(tmp_path, text)
    result = CliRunner().invoke(app, ["live", str(shipped(tmp_path, "paper", registry)), "--params", str(params)],
                                env=PAPER_ENV)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert squash(f"error: {params}: ") + message in squash(result.output)
