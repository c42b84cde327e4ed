-- Sync results told back to the channel (Capability.SYNC_RESULTS) and changes locked after sync.
--
-- handover_acks now serves two needs of one order's handover, each flagged on its row:
-- `acknowledge` (AckMoment.ON_HANDOVER: tell the channel once the provider accepted the order)
-- and `report_results` (SYNC_RESULTS: tell the channel what the provider said, accepted or
-- refused). Dispatch's OrderDispatched sets handed_over_at and, for a reporting row, the result
-- `accepted` with the provider's reference; OrderDispatchFailed sets `refused` with its reason.
-- Each new result bumps result_seq; the poller reports the rows whose reported_seq is behind.
ALTER TABLE handover_acks
    ADD COLUMN acknowledge        boolean     NOT NULL DEFAULT true,
    ADD COLUMN report_results     boolean     NOT NULL DEFAULT false,
    ADD COLUMN provider           text        NOT NULL DEFAULT '',  -- the provider's connector id
    ADD COLUMN provider_reference text        NOT NULL DEFAULT '',  -- its id of the order it created
    ADD COLUMN result             text        NOT NULL DEFAULT '',  -- '' | accepted | refused
    ADD COLUMN failure            text        NOT NULL DEFAULT '',  -- a refusal's 'REASON_CODE: reason'
    ADD COLUMN result_at          timestamptz,
    ADD COLUMN result_seq         integer     NOT NULL DEFAULT 0,   -- bumped at each new result
    ADD COLUMN reported_seq       integer     NOT NULL DEFAULT 0,   -- the result_seq the channel was told
    ADD COLUMN reported_at        timestamptz;

-- The poller's question: which results of this account has the channel not been told yet.
CREATE INDEX handover_acks_to_report ON handover_acks (tenant_id, account, result_at)
    WHERE report_results AND result_seq > reported_seq;

-- A revision changing an order its channel locks once synced (ConnectorInfo.locked_after_handover)
-- is kept as a receipt with outcome 'locked_after_sync' and the operator's message in detail.
CREATE INDEX webhook_receipts_locked ON webhook_receipts (tenant_id, account, received_at DESC, id DESC)
    WHERE outcome = 'locked_after_sync';
CREATE INDEX webhook_receipts_locked_by_order ON webhook_receipts (order_id, received_at)
    WHERE outcome = 'locked_after_sync';
