-- An order's receipts, for its history (OrderHistoryService, `ordersync trace`): every receipt of
-- one order in time order. The earlier indexes cover problem and locked receipts only, so without
-- this one reading a long-lived order's history scans every receipt of the schema.

CREATE INDEX webhook_receipts_by_order ON webhook_receipts (order_id, id) WHERE order_id IS NOT NULL;
