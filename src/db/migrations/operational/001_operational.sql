-- The operational database: how the components of the cluster talk to each other.

-- Machine registry: which host is the reference machine, which are satellites and in
-- which group. Machines that leave the config are retired, not deleted, so old
-- reports still name them.
CREATE TABLE machines (
  name          text PRIMARY KEY,
  role          text NOT NULL CHECK (role IN ('reference', 'satellite', 'master', 'slave')),
  group_name    text,
  host          text NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  retired_at    timestamptz,
  CONSTRAINT satellites_have_a_group CHECK ((role = 'satellite') = (group_name IS NOT NULL))
);
-- The lectureship: at most one active reference machine.
CREATE UNIQUE INDEX machines_one_reference ON machines (role) WHERE role = 'reference' AND retired_at IS NULL;

-- Flags, e.g. "updating" while the reference machine prepares a lesson, and the lesson
-- that is ready for the scholars.
CREATE TABLE flags (
  name     text PRIMARY KEY,
  value    jsonb NOT NULL,
  set_by   text NOT NULL,
  set_at   timestamptz NOT NULL DEFAULT now()
);

-- The subject-matter inbox: inputting staff (or any program) drop new records and
-- full-text documents here, per subject. An item is taken by exactly one lesson; an
-- item that fails to process is marked with the reason, never dropped.
CREATE TABLE inbox (
  id          bigserial PRIMARY KEY,
  subject     text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('record', 'document')),
  external_id text NOT NULL,
  payload     jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  taken_by    text,
  taken_at    timestamptz,
  failed_at   timestamptz,
  failure     text,
  CONSTRAINT taken_together CHECK ((taken_by IS NULL) = (taken_at IS NULL)),
  CONSTRAINT failure_explained CHECK ((failed_at IS NULL) = (failure IS NULL))
);
CREATE INDEX inbox_waiting ON inbox (subject, id) WHERE taken_at IS NULL AND failed_at IS NULL;

-- The task monitor: one report per task run, with its status and log. `run_key` makes
-- writing a report idempotent (the same run writing twice updates its own row).
CREATE TABLE reports (
  id          bigserial PRIMARY KEY,
  run_key     text NOT NULL UNIQUE,
  task        text NOT NULL,
  machine     text,
  status      text NOT NULL CHECK (status IN ('running', 'ok', 'nothing-to-do', 'halted', 'failed', 'aborted')),
  summary     text NOT NULL,
  log         text NOT NULL DEFAULT '',
  details     jsonb NOT NULL DEFAULT '{}'::jsonb,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reports_newest ON reports (started_at DESC);
