-- The journal of live and rehearsed runs. Every row is keyed by (run_id, seq): seq counts
-- the run's events across all tables, so a replayed spool inserts each row exactly once.
-- Times are UTC nanoseconds (NautilusTrader's), quantities and prices exact numerics.
CREATE TABLE journal.run_events (
    run_id text NOT NULL, seq bigint NOT NULL, ts bigint NOT NULL, kind text NOT NULL,
    trading_day date NOT NULL, trader_id text NOT NULL, name text NOT NULL, mode text NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE INDEX run_events_day ON journal.run_events (trading_day);
CREATE TABLE journal.model_versions (
    run_id text NOT NULL, seq bigint NOT NULL, name text NOT NULL, version integer,
    path text NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE journal.orders (
    run_id text NOT NULL, seq bigint NOT NULL, ts_init bigint NOT NULL,
    client_order_id text NOT NULL, strategy_id text NOT NULL, instrument_id text NOT NULL,
    side text NOT NULL, quantity numeric NOT NULL, type text NOT NULL, price numeric,
    trigger_price numeric, time_in_force text NOT NULL, tags text NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE TABLE journal.order_events (
    run_id text NOT NULL, seq bigint NOT NULL, ts_event bigint NOT NULL, ts_init bigint NOT NULL,
    event_id text NOT NULL, kind text NOT NULL, client_order_id text NOT NULL,
    venue_order_id text, strategy_id text NOT NULL, instrument_id text NOT NULL,
    details jsonb NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE journal.fills (
    run_id text NOT NULL, seq bigint NOT NULL, ts_event bigint NOT NULL,
    client_order_id text NOT NULL, venue_order_id text NOT NULL, trade_id text NOT NULL,
    position_id text, instrument_id text NOT NULL, side text NOT NULL, last_qty numeric NOT NULL,
    last_px numeric NOT NULL, commission numeric NOT NULL, currency text NOT NULL,
    liquidity_side text NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE journal.positions (
    run_id text NOT NULL, seq bigint NOT NULL, ts_event bigint NOT NULL, kind text NOT NULL,
    position_id text NOT NULL, instrument_id text NOT NULL, side text NOT NULL,
    quantity numeric NOT NULL, avg_px_open double precision NOT NULL,
    realized_pnl numeric NOT NULL, unrealized_pnl numeric NOT NULL, currency text NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE TABLE journal.account_states (
    run_id text NOT NULL, seq bigint NOT NULL, ts_event bigint NOT NULL, account_id text NOT NULL,
    currency text NOT NULL, total numeric NOT NULL, free numeric NOT NULL, locked numeric NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE TABLE journal.signals (
    run_id text NOT NULL, seq bigint NOT NULL, ts_event bigint NOT NULL,
    instrument_id text NOT NULL, models text NOT NULL, probabilities double precision[] NOT NULL,
    decision text NOT NULL, confidence double precision NOT NULL,
    expected_return double precision NOT NULL, risk_score integer NOT NULL,
    volatility double precision NOT NULL, horizon integer NOT NULL, horizons text NOT NULL,
    horizon_returns double precision[] NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE journal.daily_summaries (
    run_id text NOT NULL, seq bigint NOT NULL, trading_day date NOT NULL, signals integer NOT NULL,
    orders integer NOT NULL, fills integer NOT NULL, start_equity numeric, end_equity numeric,
    realized_pnl numeric NOT NULL, PRIMARY KEY (run_id, seq));
