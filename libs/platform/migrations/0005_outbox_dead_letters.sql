-- Events the outbox relay can never publish (the broker or the producer refuses them for good,
-- e.g. over the message size limit) move to dead_letters beside the consumers' undecodable
-- messages, so one such event no longer holds back every later one. A relay dead letter has no
-- consumer group, partition or offset; it keeps what replaying it needs: topic, key, value and
-- headers, and the outbox id it had.

ALTER TABLE dead_letters
    ALTER COLUMN consumer_group DROP NOT NULL,
    ALTER COLUMN partition DROP NOT NULL,
    ALTER COLUMN "offset" DROP NOT NULL,
    ADD COLUMN source    text  NOT NULL DEFAULT 'consumer' CHECK (source IN ('consumer', 'outbox')),
    ADD COLUMN headers   jsonb,
    ADD COLUMN outbox_id bigint,
    ADD CONSTRAINT dead_letters_origin CHECK (
        (source = 'consumer' AND consumer_group IS NOT NULL AND partition IS NOT NULL AND "offset" IS NOT NULL)
        OR (source = 'outbox' AND outbox_id IS NOT NULL AND headers IS NOT NULL)
    );
