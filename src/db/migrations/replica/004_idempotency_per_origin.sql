-- Idempotency keys belong to whoever saves: the same key from two slaves is two saves,
-- and a slave reusing another's key must not have its save dropped as a duplicate.
ALTER TABLE lp_commitblocks DROP CONSTRAINT lp_commitblocks_idempotency_key_key;
ALTER TABLE lp_commitblocks ADD CONSTRAINT lp_commitblocks_origin_idempotency_key UNIQUE (origin, idempotency_key);
