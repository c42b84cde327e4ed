-- status may now also be 'blocked': the channel takes only carrier codes of its own list
-- (ConnectorInfo.needs_carrier_code, e.g. Groupon's approved couriers) and the shipment's courier
-- maps to none of them. Nothing is written; the reason names the courier and the mapping to add,
-- and the row is claimed again on a schedule (and at once when the tenant's mappings change),
-- without using up its attempts. The due index covers it, so claims keep using the index.
DROP INDEX writebacks_due;
CREATE INDEX writebacks_due ON writebacks (next_attempt_at) WHERE status IN ('pending', 'retry_wait', 'blocked');
