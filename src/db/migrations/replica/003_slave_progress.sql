-- How far each slave has applied, as the master learns it from the slave's own pulls
-- ("blocks after n" means n is applied). The master prunes only blocks every
-- configured slave has applied. Empty on slaves; kept in every replica database so the
-- table structure stays equal and a master backup can become a slave as it is.
CREATE TABLE lp_slave_progress (
  slave       text PRIMARY KEY,
  applied_seq bigint NOT NULL,
  seen_at     timestamptz NOT NULL DEFAULT now()
);
