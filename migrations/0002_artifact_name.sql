-- Named artifacts (ArtifactSaved events, e.g. an analysis run's basis tensors):
-- the name the trainer gave the file, unique per run; '' for checkpoints.
ALTER TABLE artifacts ADD COLUMN name TEXT NOT NULL DEFAULT '';
CREATE INDEX artifacts_by_run_name ON artifacts(run_id, name) WHERE name != '';
