-- Reconciliation of channel accounts: one schedule row per (tenant, channel account), leased by one
-- replica at a time, and the runs with their findings (lost webhooks, missed polls).

CREATE TABLE reconcile_schedules (
    tenant_id    text        NOT NULL,
    account      text        NOT NULL,
    connector    text        NOT NULL,
    next_run_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner  text,                             -- the replica running it now, or NULL
    lease_until  timestamptz,
    last_run_at  timestamptz,
    last_error   text        NOT NULL DEFAULT '',  -- why the last run could not read the account
    PRIMARY KEY (tenant_id, account)
);
CREATE INDEX reconcile_schedules_due ON reconcile_schedules (next_run_at);

-- Every run, scheduled or on demand, with what it found and did (libs.platform.reconciliation.Finding).
CREATE TABLE reconcile_runs (
    id           bigserial   PRIMARY KEY,
    tenant_id    text        NOT NULL,
    account      text        NOT NULL,
    trigger      text        NOT NULL,  -- scheduled | on_demand
    dry_run      boolean     NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    compared     integer     NOT NULL DEFAULT 0,
    findings     jsonb       NOT NULL DEFAULT '[]'
);
CREATE INDEX reconcile_runs_by_tenant ON reconcile_runs (tenant_id, id DESC);
