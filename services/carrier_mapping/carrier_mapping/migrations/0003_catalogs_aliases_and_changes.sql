-- Catalogs of every system, accepted spellings, carrier-level codes, and a change log.
--
-- A code may name a carrier only (Groupon's couriers): its canonical_service is empty and it
-- answers for every service of its canonical carrier. So a system's code is unique per canonical
-- carrier and service together, not per service alone.

ALTER TABLE service_codes
    DROP CONSTRAINT service_codes_system_tenant_id_canonical_service_key,
    ADD CONSTRAINT service_codes_canonical_key
        UNIQUE (system, tenant_id, canonical_carrier, canonical_service),
    ADD CONSTRAINT service_codes_canonical_format
        CHECK (canonical_carrier ~ '^[A-Z0-9_]+$' AND canonical_service ~ '^[A-Z0-9_]*$'),
    -- Other accepted spellings of `code` ('ups' for 'UPS'): understood on input, never output.
    ADD COLUMN aliases text[] NOT NULL DEFAULT '{}',
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- One row per committed change of service_codes. Its version orders changes; every replica
-- reloads after a NOTIFY and tells watchers which tenants changed since the version it had.
CREATE TABLE mapping_changes (
    version    bigserial PRIMARY KEY,
    tenant_id  text NOT NULL,          -- '' = the global defaults changed
    changed_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO systems (system) VALUES ('groupon'), ('shipstation'), ('mintsoft'), ('cin7');
