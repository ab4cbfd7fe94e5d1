-- Decisions taken outside the order flow, with their evidence: a model promotion or its
-- refusal, a pin, a rollback. Keyed by their own id, so recording one twice stores it once.
CREATE TABLE journal.decisions (
    decision_id text PRIMARY KEY, ts bigint NOT NULL, trading_day date NOT NULL,
    kind text NOT NULL, subject text NOT NULL, details jsonb NOT NULL);
CREATE INDEX decisions_day ON journal.decisions (trading_day);
