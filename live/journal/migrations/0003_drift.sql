-- The drift report of a day (live.drift): the live run against the backtest of the same bars
-- with the same models. One report per run; writing a run's report again replaces it.
CREATE TABLE journal.drift_reports (
    run_id text PRIMARY KEY, trading_day date NOT NULL, ts bigint NOT NULL,
    counts jsonb NOT NULL, live_pnl double precision NOT NULL, backtest_pnl double precision NOT NULL,
    unexplained integer NOT NULL, significant_features integer NOT NULL,
    live_equity jsonb NOT NULL, backtest_equity jsonb NOT NULL);
CREATE INDEX drift_reports_day ON journal.drift_reports (trading_day);
CREATE TABLE journal.drift_differences (
    run_id text NOT NULL REFERENCES journal.drift_reports ON DELETE CASCADE, seq integer NOT NULL,
    kind text NOT NULL, key text NOT NULL, reason text NOT NULL, detail text NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE TABLE journal.drift_features (
    run_id text NOT NULL REFERENCES journal.drift_reports ON DELETE CASCADE, feature text NOT NULL,
    psi double precision NOT NULL, level text NOT NULL, rows integer NOT NULL,
    PRIMARY KEY (run_id, feature));
