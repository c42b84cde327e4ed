-- The order's lines as the channel gave them (an Order message holding only its lines), from
-- dispatch's ShipmentUpdated: a channel writing tracking per line (Groupon) checks the shipment
-- names only lines of the order and tells a partial shipment from a whole one. '' on rows from
-- older events; a report without lines keeps the lines stored before.
ALTER TABLE writebacks ADD COLUMN order_lines_proto bytea NOT NULL DEFAULT '';
