-- What the rollout needs to know of each filed lesson (manifest sha256, file count, the
-- reference's test queries and their answers), so that a rollback to a kept lesson can be
-- checked against the reference's own answers long after the rollout that brought it.
-- Lessons filed before this column have none and cannot be rolled back to.
ALTER TABLE lessons ADD COLUMN filed jsonb;
