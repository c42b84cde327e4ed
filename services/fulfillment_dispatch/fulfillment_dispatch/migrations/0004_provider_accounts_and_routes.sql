-- Providers are found through the connector registry and a tenant may hold several accounts of
-- one: each order names the account it goes to, the route that sent it there (for the route's
-- options), and the channel account that sold it (for the events writeback acts on).
-- Rows from before accounts had names keep '' and resolve to the tenant's single account of
-- their connector.
ALTER TABLE dispatches ADD COLUMN provider_account text NOT NULL DEFAULT '';
ALTER TABLE dispatches ADD COLUMN route text NOT NULL DEFAULT '';
ALTER TABLE dispatches ADD COLUMN channel_account text NOT NULL DEFAULT '';
