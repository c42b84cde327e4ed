-- Carrier mapping's schema: the systems it knows and each system's service codes, every code
-- mapped to one canonical (ordersync) carrier service. Translation goes system -> canonical ->
-- system, so adding a system adds one set of rows rather than one per pair of systems.

CREATE TABLE systems (
    -- Lower-case vendor name without separators, as connectors are named: 'commerce7'.
    system text PRIMARY KEY CHECK (system ~ '^[a-z0-9]+$')
);

CREATE TABLE service_codes (
    system            text NOT NULL REFERENCES systems (system),
    tenant_id         text NOT NULL DEFAULT '',  -- '' = global default; else that tenant's override
    code              text NOT NULL CHECK (code <> ''),  -- exact, case-sensitive: '03'
    name              text NOT NULL,             -- the system's title: 'UPS Ground'
    carrier           text NOT NULL,             -- the carrier in the system's spelling: 'UPS'
    canonical_carrier text NOT NULL,             -- ordersync's carrier id: 'UPS'
    canonical_service text NOT NULL,             -- ordersync's service id: 'UPS_GROUND'
    PRIMARY KEY (system, tenant_id, code),
    -- Translating into a system looks a canonical service up; it must have one answer.
    UNIQUE (system, tenant_id, canonical_service)
);
