-- perdure schema 6: workflow execution timeouts. Past its deadline an instance fails.
ALTER TABLE instances ADD COLUMN deadline DOUBLE PRECISION;
