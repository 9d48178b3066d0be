-- Commitblocks: one row per save, written in the same transaction as its business data,
-- on the master and (as applied) on every slave. `seq` is the master's order; see
-- src/master/commitblocks.ts for why no reader ever sees a gap that fills later.
CREATE TABLE lp_commitblocks (
  seq             bigint PRIMARY KEY,
  model_checksum  text NOT NULL REFERENCES lp_models (checksum),
  changes         jsonb NOT NULL,
  origin          text NOT NULL,
  idempotency_key text NOT NULL UNIQUE,
  committed_at    timestamptz NOT NULL
);
