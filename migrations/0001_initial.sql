-- 0001: the initial Pendulum schema. Never edit after it has shipped; add 0002_….
-- Times are Unix milliseconds (INTEGER). Enum columns hold the proto enum numbers
-- (pendulum.v1.RunState, Role, WorkerState).

CREATE TABLE users (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  role        INTEGER NOT NULL,           -- pendulum.v1.Role
  gpu_quota   INTEGER NOT NULL DEFAULT 0, -- whole GPUs at once; 0 = unlimited
  created_ms  INTEGER NOT NULL
);

-- Bearer tokens: only the SHA-256 (hex) of the token is stored.
CREATE TABLE tokens (
  id            INTEGER PRIMARY KEY,
  user_id       INTEGER NOT NULL REFERENCES users(id),
  role          INTEGER NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  token_sha256  TEXT NOT NULL UNIQUE,
  created_ms    INTEGER NOT NULL,
  last_used_ms  INTEGER NOT NULL DEFAULT 0,
  revoked       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_by_user ON tokens(user_id);

CREATE TABLE sweeps (
  id          INTEGER PRIMARY KEY,
  owner       TEXT NOT NULL REFERENCES users(name),
  size        INTEGER NOT NULL,
  created_ms  INTEGER NOT NULL
);

CREATE TABLE runs (
  id                      INTEGER PRIMARY KEY,
  name                    TEXT NOT NULL,
  owner                   TEXT NOT NULL REFERENCES users(name),
  state                   INTEGER NOT NULL,          -- pendulum.v1.RunState
  spec                    BLOB NOT NULL,             -- serialized pendulum.v1.RunSpec
  priority                INTEGER NOT NULL DEFAULT 0,
  req_gpus                INTEGER NOT NULL DEFAULT 0,
  req_gpu_fraction        REAL NOT NULL DEFAULT 0,
  req_gpu_memory_mb       INTEGER NOT NULL DEFAULT 0,
  req_cpus                INTEGER NOT NULL DEFAULT 0,
  attempt                 INTEGER NOT NULL DEFAULT 0, -- 1 on first placement, +1 per requeue
  worker_id               TEXT NOT NULL DEFAULT '',
  created_ms              INTEGER NOT NULL,
  started_ms              INTEGER NOT NULL DEFAULT 0,
  finished_ms             INTEGER NOT NULL DEFAULT 0,
  exit_reason             TEXT NOT NULL DEFAULT '',
  exit_code               INTEGER NOT NULL DEFAULT 0,
  queue_reason            TEXT NOT NULL DEFAULT '',
  sweep_id                INTEGER NOT NULL DEFAULT 0,
  points_emitted          INTEGER NOT NULL DEFAULT 0, -- current attempt, from its Finished event
  progress_step           INTEGER NOT NULL DEFAULT 0,
  progress_total_steps    INTEGER NOT NULL DEFAULT 0,
  progress_epoch          REAL NOT NULL DEFAULT 0,
  progress_last_loss      REAL NOT NULL DEFAULT 0,
  progress_steps_per_sec  REAL NOT NULL DEFAULT 0,
  progress_time_ms        INTEGER NOT NULL DEFAULT 0, -- trainer time of progress_step
  last_checkpoint_step    INTEGER NOT NULL DEFAULT -1, -- newest CheckpointSaved event
  resume_artifact_id      TEXT NOT NULL DEFAULT '',    -- newest uploaded checkpoint
  resume_step             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_state ON runs(state, id);
CREATE INDEX runs_by_owner ON runs(owner, id);
CREATE INDEX runs_by_sweep ON runs(sweep_id) WHERE sweep_id != 0;
CREATE INDEX runs_by_worker ON runs(worker_id) WHERE worker_id != '';

-- State history of every run, with the reason of each change.
CREATE TABLE run_events (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id),
  attempt     INTEGER NOT NULL,
  time_ms     INTEGER NOT NULL,
  from_state  INTEGER NOT NULL,
  to_state    INTEGER NOT NULL,
  worker_id   TEXT NOT NULL DEFAULT '',
  reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX run_events_by_run ON run_events(run_id, id);

CREATE TABLE workers (
  id                 TEXT PRIMARY KEY,
  hostname           TEXT NOT NULL DEFAULT '',
  state              INTEGER NOT NULL,        -- pendulum.v1.WorkerState (ONLINE/LOST/OFFLINE)
  draining           INTEGER NOT NULL DEFAULT 0,
  slots              INTEGER NOT NULL DEFAULT 0,
  gpu_count          INTEGER NOT NULL DEFAULT 0,
  info               BLOB NOT NULL,           -- serialized pendulum.v1.WorkerInfo (gpus, labels, version)
  registered_ms      INTEGER NOT NULL,
  last_heartbeat_ms  INTEGER NOT NULL
);

-- Interned names: scalar metric names, layer names and oscillation statistic names.
CREATE TABLE metric_names (
  id    INTEGER PRIMARY KEY,
  name  TEXT NOT NULL UNIQUE
);

-- One row per (event seq, scalar name). Hot path: written by the MetricIngestor only.
CREATE TABLE metrics (
  run_id      INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  name_id     INTEGER NOT NULL,
  step        INTEGER NOT NULL,
  value       REAL,
  time_ms     INTEGER NOT NULL,
  superseded  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, attempt, seq, name_id)
) WITHOUT ROWID;
CREATE INDEX metrics_by_name_step ON metrics(run_id, name_id, step);

-- Per (run, attempt): the highest contiguous seq durably stored (what was acked),
-- so acks survive a server restart, plus counts for `pendulum show`.
CREATE TABLE attempt_progress (
  run_id          INTEGER NOT NULL,
  attempt         INTEGER NOT NULL,
  acked_seq       INTEGER NOT NULL DEFAULT 0,
  points_stored   INTEGER NOT NULL DEFAULT 0,
  points_emitted  INTEGER NOT NULL DEFAULT 0,
  finished        INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, attempt)
) WITHOUT ROWID;

-- Attempt `attempt` resumed from a checkpoint at resume_step: points of earlier
-- attempts with step > resume_step are superseded.
CREATE TABLE supersessions (
  run_id       INTEGER NOT NULL,
  attempt      INTEGER NOT NULL,
  resume_step  INTEGER NOT NULL,
  PRIMARY KEY (run_id, attempt)
) WITHOUT ROWID;

-- Per-layer oscillation statistics: one row per (event seq, layer, statistic).
CREATE TABLE layer_oscillation (
  run_id      INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  layer_id    INTEGER NOT NULL,   -- metric_names.id of the layer name
  stat_id     INTEGER NOT NULL,   -- metric_names.id of the statistic name
  step        INTEGER NOT NULL,
  value       REAL,
  superseded  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, attempt, seq, layer_id, stat_id)
) WITHOUT ROWID;
CREATE INDEX layer_oscillation_by_layer_step ON layer_oscillation(run_id, layer_id, step);

-- Per-weight state, one snapshot per (event seq, layer).
CREATE TABLE weight_snapshots (
  run_id      INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  layer       TEXT NOT NULL,
  step        INTEGER NOT NULL,
  superseded  INTEGER NOT NULL DEFAULT 0,
  snapshot    BLOB NOT NULL,      -- serialized pendulum.v1.WeightSnapshot
  PRIMARY KEY (run_id, attempt, seq, layer)
) WITHOUT ROWID;
CREATE INDEX weight_snapshots_by_layer_step ON weight_snapshots(run_id, layer, step);

-- CheckpointSaved events as the trainer reported them (path on the worker).
CREATE TABLE run_checkpoints (
  run_id    INTEGER NOT NULL,
  attempt   INTEGER NOT NULL,
  seq       INTEGER NOT NULL,
  step      INTEGER NOT NULL,
  path      TEXT NOT NULL,
  bytes     INTEGER NOT NULL,
  sha256    TEXT NOT NULL,
  time_ms   INTEGER NOT NULL,
  PRIMARY KEY (run_id, attempt, seq)
) WITHOUT ROWID;

-- Stored artifacts (checkpoints uploaded to the server's artifact directory).
CREATE TABLE artifacts (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id),
  attempt     INTEGER NOT NULL,
  step        INTEGER NOT NULL,
  kind        TEXT NOT NULL,
  path        TEXT NOT NULL,
  size        INTEGER NOT NULL,
  sha256      TEXT NOT NULL,
  created_ms  INTEGER NOT NULL
);
CREATE INDEX artifacts_by_run ON artifacts(run_id, kind, step);
