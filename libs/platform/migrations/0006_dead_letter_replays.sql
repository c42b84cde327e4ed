-- Dead letters become replayable by an operator: each names the tenant of its envelope (so a
-- tenant's operators see only their own; '' when the message could not be decoded, which only
-- a caller granted every tenant sees), and is marked when replayed. A dead letter is replayed at
-- most once; every replay is audited with who, why and, for an edited message, what was sent.
-- Rows kept before this migration have tenant ''.

ALTER TABLE dead_letters
    ADD COLUMN tenant_id   text NOT NULL DEFAULT '',
    ADD COLUMN replayed_at timestamptz,
    ADD COLUMN replayed_by text;

CREATE INDEX dead_letters_by_tenant ON dead_letters (tenant_id, id DESC);

CREATE TABLE dead_letter_replays (
    id             bigserial PRIMARY KEY,
    dead_letter_id bigint      NOT NULL REFERENCES dead_letters (id),
    replayed_at    timestamptz NOT NULL DEFAULT now(),
    operator       text        NOT NULL,
    reason         text        NOT NULL,
    edited_value   bytea,      -- the message as the operator replaced it; NULL when sent as kept
    event_id       text        NOT NULL
);
CREATE INDEX dead_letter_replays_of ON dead_letter_replays (dead_letter_id);
