-- Every database of the master/slave cluster (master and slaves alike) records the
-- models its schema went through, so that a backup of the master can become a slave as
-- it is. `current` marks the model the schema is at now.
CREATE TABLE lp_models (
  checksum    text PRIMARY KEY,
  model       jsonb NOT NULL,
  deployed_at timestamptz NOT NULL DEFAULT now(),
  current     boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX lp_models_one_current ON lp_models (current) WHERE current;
