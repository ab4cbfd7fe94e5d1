-- What the strategy did with every signal of a stock it trades: entered (naming the entry
-- order it created) or held/skipped with the reason (strategies.decisions). Not the
-- promotion decisions of journal.decisions: these come with every bar, through COPY.
CREATE TABLE journal.strategy_decisions (
    run_id text NOT NULL, seq bigint NOT NULL, ts_event bigint NOT NULL, ts_init bigint NOT NULL,
    instrument_id text NOT NULL, probability double precision NOT NULL,
    threshold double precision NOT NULL, action text NOT NULL, reason text NOT NULL,
    client_order_id text NOT NULL, PRIMARY KEY (run_id, seq));
