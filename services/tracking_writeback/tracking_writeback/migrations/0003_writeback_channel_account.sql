-- The tenant's name for the channel account the order came from: the writer writes back through
-- that account. Rows written before accounts had names keep '' and resolve to the tenant's only
-- account of the row's channel connector.
ALTER TABLE writebacks ADD COLUMN channel_account text NOT NULL DEFAULT '';
