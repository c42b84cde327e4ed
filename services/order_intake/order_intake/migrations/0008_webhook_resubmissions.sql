-- Resubmitted webhook bodies: an operator takes a kept, refused receipt (malformed, invalid,
-- too_large) through the webhook's ingest path again (WebhookReceiptService). The new receipt has
-- source 'resubmit' (source has no CHECK constraint: push | pull | reconcile | resubmit) and says
-- which receipt it came from, who resubmitted it and why, and whether its body was edited.

ALTER TABLE webhook_receipts
    ADD COLUMN resubmitted_from bigint REFERENCES webhook_receipts (id),  -- the refused receipt it retries
    ADD COLUMN resubmitted_by   text,                                     -- the caller's name
    ADD COLUMN resubmit_reason  text,                                     -- the operator's reason
    ADD COLUMN resubmit_edited  boolean NOT NULL DEFAULT false;           -- a replacement body was given

-- A receipt's resubmissions (is one of them taken already?), and the refused ones operators list.
CREATE INDEX webhook_receipts_resubmissions ON webhook_receipts (resubmitted_from, id)
    WHERE resubmitted_from IS NOT NULL;
CREATE INDEX webhook_receipts_refused ON webhook_receipts (tenant_id, id DESC)
    WHERE outcome IN ('malformed', 'invalid', 'too_large');
