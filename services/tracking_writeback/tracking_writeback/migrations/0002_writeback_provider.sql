-- Which provider reported the shipment: carrier mapping translates the provider's service code
-- into the channel's carrier spelling. Rows written before this column held Vinoshipper's.
ALTER TABLE writebacks ADD COLUMN provider text NOT NULL DEFAULT 'vinoshipper';
