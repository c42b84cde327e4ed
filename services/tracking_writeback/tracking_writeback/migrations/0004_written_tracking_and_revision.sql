-- The tracking numbers the channel shows because writeback wrote them: when the provider voids
-- a label, the plan can tell whether its number was written and must be taken back (RETRACT).
-- Rows written before this column know none, so nothing of theirs is ever retracted.
--
-- target_revision counts the reports that changed the wanted state. A voided label is news
-- with the same target_status; the write in flight when it arrives compares revisions, so its
-- result leaves the newer state pending instead of covering it.
ALTER TABLE writebacks
    ADD COLUMN written_tracking jsonb  NOT NULL DEFAULT '[]',
    ADD COLUMN target_revision  bigint NOT NULL DEFAULT 0;
