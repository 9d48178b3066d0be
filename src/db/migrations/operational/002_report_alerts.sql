-- Alerts for reports that need an operator (a halt, an abort): when the notifier took
-- the alert. A report written again for the same run (a retried activity) finds it set
-- and does not alert twice.
ALTER TABLE reports ADD COLUMN alerted_at timestamptz;
