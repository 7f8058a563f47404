-- perdure schema 4: child workflows. A child knows its parent and what happens to it
-- when the parent ends: terminate, request_cancel or abandon.
ALTER TABLE instances ADD COLUMN parent_id TEXT;
ALTER TABLE instances ADD COLUMN parent_close TEXT;
CREATE INDEX instances_parent ON instances (parent_id) WHERE parent_id IS NOT NULL;
