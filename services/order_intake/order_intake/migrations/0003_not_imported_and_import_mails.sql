-- Orders a channel's import rules keep out (status 'not_imported', with each failed rule), and the
-- failed-import mails: a durable queue written in the revision's own transaction, sent by a worker.

ALTER TABLE orders
    -- [{"code": "NOT_FULLY_PICKED", "field": "stage", "sentence": "..."}], in the channel's order;
    -- '[]' unless the latest revision failed an import rule.
    ADD COLUMN rule_failures jsonb NOT NULL DEFAULT '[]';
-- status is now accepted | invalid | not_imported; operators list the not imported ones by code.
CREATE INDEX orders_not_imported ON orders (tenant_id, received_at DESC, order_id) WHERE status = 'not_imported';

-- Which (order, code) pairs have had their mail: one mail per order and failure, ever.
CREATE TABLE import_mail_codes (
    order_id  text        NOT NULL,
    code      text        NOT NULL,
    mail_id   text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, code)
);

-- One mail per not imported revision that failed a rule not mailed before (it names those rules).
CREATE TABLE import_mails (
    mail_id          text        PRIMARY KEY,   -- '<order_id>/<first code>': unique with the ledger above
    order_id         text        NOT NULL,
    tenant_id        text        NOT NULL,
    channel          text        NOT NULL,
    account          text        NOT NULL DEFAULT '',
    order_number     text        NOT NULL,      -- the channel's order number, what the mail names
    recipient        text        NOT NULL,      -- the account's import_errors_to when queued
    failures         jsonb       NOT NULL,      -- the rules it reports, as orders.rule_failures
    status           text        NOT NULL DEFAULT 'pending',  -- pending | retry_wait | sent | failed
    attempts         integer     NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX import_mails_due ON import_mails (next_attempt_at) WHERE status IN ('pending', 'retry_wait');
CREATE INDEX import_mails_by_order ON import_mails (order_id);

-- Every attempt of a mail (libs.platform.work_queue's activity log; order_id holds the mail_id).
CREATE TABLE import_mail_activity (
    id        bigserial   PRIMARY KEY,
    order_id  text        NOT NULL,
    tenant_id text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text        NOT NULL,
    message   text        NOT NULL
);
CREATE INDEX import_mail_activity_by_mail ON import_mail_activity (order_id, id);
