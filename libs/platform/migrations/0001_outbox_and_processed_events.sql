-- Platform tables every service schema carries: the transactional outbox and the
-- processed-event ledger that makes Kafka redelivery harmless.

CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    key         bytea       NOT NULL,
    value       bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE processed_events (
    consumer_group text        NOT NULL,
    event_id       text        NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);

-- Messages a consumer could not decode: kept whole for inspection and replay.
CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    key            bytea,
    value          bytea,
    error          text        NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer_group, topic, partition, "offset")
);

-- Wake the outbox relay as soon as a transaction that wrote events commits.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
