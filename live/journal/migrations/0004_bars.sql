-- The bars the live node received, as it received them: the live side of a day's drift report
-- ("missing bar live", "late bar") for a live day, not only a rehearsed one. Prices exact.
CREATE TABLE journal.bars (
    run_id text NOT NULL, seq bigint NOT NULL, ts_event bigint NOT NULL, ts_init bigint NOT NULL,
    instrument_id text NOT NULL, open numeric NOT NULL, high numeric NOT NULL, low numeric NOT NULL,
    close numeric NOT NULL, volume numeric NOT NULL, PRIMARY KEY (run_id, seq));
