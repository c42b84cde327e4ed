-- The provider's own id of the order it created, where it differs from our order number
-- (VinSuite's OrderID for the OrderNumber we chose): kept so reservation -> provider order is
-- known, shown to operators and told back to channels that take sync results.
ALTER TABLE dispatches ADD COLUMN provider_reference text NOT NULL DEFAULT '';
