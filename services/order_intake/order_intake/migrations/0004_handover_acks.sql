-- Acknowledgements that wait for the provider: for a pulled account whose channel is told of an
-- order only once the provider accepted it (AckMoment.ON_HANDOVER, e.g. CommerceInterface's
-- mark_exported, after which the channel stops listing the order). One row per order, written in
-- the transaction of its revision; dispatch's OrderDispatched sets handed_over_at; the account's
-- poller acknowledges handed-over rows and sets acknowledged_at.
CREATE TABLE handover_acks (
    order_id        text        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    account         text        NOT NULL,
    ack_token       text        NOT NULL,            -- the latest revision's, until acknowledged
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    handed_over_at  timestamptz,                     -- the provider accepted it (NULL: not yet)
    acknowledged_at timestamptz                      -- the channel was told (NULL: not yet)
);
-- The poller's question: what of this account is handed over and not yet acknowledged.
CREATE INDEX handover_acks_to_acknowledge ON handover_acks (tenant_id, account, handed_over_at)
    WHERE handed_over_at IS NOT NULL AND acknowledged_at IS NULL;
