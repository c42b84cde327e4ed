-- Every order's sync status lives here, not only the routed ones: an order routed nowhere is
-- recorded as not_required with routing's reason, so an operator lists all statuses in one place.
-- Statuses: sending | retry_wait | sent | failed | not_required | voided.

-- Orders that are never sent have no provider order number; only real numbers must be unique.
ALTER TABLE dispatches DROP CONSTRAINT dispatches_provider_provider_order_number_key;
CREATE UNIQUE INDEX dispatches_provider_number ON dispatches (provider, provider_order_number)
    WHERE provider_order_number <> '';
CREATE INDEX dispatches_by_tenant_number ON dispatches (tenant_id, external_number);

-- An operator's Retry gives a failed order a fresh retry budget without resetting `attempts`,
-- which fences late results of earlier attempts.
ALTER TABLE dispatches ADD COLUMN attempts_before_retry integer NOT NULL DEFAULT 0;

-- Polling for sent orders whose provider updates are overdue (a lost webhook delays a status,
-- never loses it). `status_checks` counts checks without news, to space them out.
ALTER TABLE dispatches ADD COLUMN next_check_at timestamptz;
ALTER TABLE dispatches ADD COLUMN status_checks integer NOT NULL DEFAULT 0;
CREATE INDEX dispatches_check_due ON dispatches (next_check_at)
    WHERE status = 'sent' AND shipment_status NOT IN ('delivered', 'cancelled');

-- Who did it: 'ordersync' for the service's own steps, else the operator's identity.
ALTER TABLE dispatch_activity ADD COLUMN actor text NOT NULL DEFAULT 'ordersync';
