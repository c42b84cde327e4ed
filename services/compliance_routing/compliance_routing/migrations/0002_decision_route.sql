-- Which of the tenant's routes decided, by which rule, and the tenant's name for the provider
-- account the order goes to. Decisions made before routes existed keep ''.
ALTER TABLE decisions
    ADD COLUMN route            text NOT NULL DEFAULT '',
    ADD COLUMN rule             text NOT NULL DEFAULT '',
    ADD COLUMN provider_account text NOT NULL DEFAULT '';
