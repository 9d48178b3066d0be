-- The lesson runs of this cluster (holdLesson, prepareLesson, rollBackLesson), recorded
-- by workflow id before each is started. "Is a run of this cluster still on" is decided
-- from these ids and Temporal's own answer for each (describe), so that a visibility
-- store that lags (Elasticsearch, a busy SQL visibility) cannot hide a run that started a
-- moment ago. A row is pruned once Temporal says its run closed after it was recorded.
CREATE TABLE lesson_runs (
  workflow_id   text PRIMARY KEY,
  workflow_type text NOT NULL CHECK (workflow_type IN ('holdLesson', 'prepareLesson', 'rollBackLesson')),
  recorded_by   text NOT NULL,
  recorded_at   timestamptz NOT NULL DEFAULT now()
);
