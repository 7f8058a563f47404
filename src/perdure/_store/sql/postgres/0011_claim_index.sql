-- perdure schema 11: a repeated claim (claim_repeat, after an ambiguous commit) finds its rows
-- by the claim's id. The index by (owner, status) served only that query, and every start run
-- where it was made and every end changed it: one page less per such commit. The new index
-- holds only claimed instances (claim_id is set by claims alone).
DROP INDEX instances_owner;
CREATE INDEX instances_claim ON instances (claim_id) WHERE claim_id IS NOT NULL;
