-- The master's memory of idempotency keys, kept apart from the blocks: retention prunes
-- blocks, never keys. A key saved again after its block was pruned (the same file saved a
-- week later) is answered as its first save was, instead of becoming a second block that
-- slaves, which still hold the first, would refuse. One row per save, about the size of
-- its key.
CREATE TABLE lp_saved_keys (
  origin text NOT NULL,
  idempotency_key text NOT NULL,
  seq bigint NOT NULL,
  PRIMARY KEY (origin, idempotency_key)
);
INSERT INTO lp_saved_keys (origin, idempotency_key, seq)
  SELECT origin, idempotency_key, seq FROM lp_commitblocks
  ON CONFLICT DO NOTHING;
