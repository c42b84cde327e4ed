-- Compliance routing's schema: one decision per order, with its reason.

CREATE TABLE decisions (
    order_id     text        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    outcome      text        NOT NULL,  -- route | not_required | not_sent
    provider     text        NOT NULL DEFAULT '',
    reason_code  text        NOT NULL,
    reason       text        NOT NULL,
    revision     text        NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_by_tenant ON decisions (tenant_id, decided_at DESC);
