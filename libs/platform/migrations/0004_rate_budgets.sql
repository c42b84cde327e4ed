-- Request budgets every replica of the service shares: one token bucket per vendor account,
-- e.g. 'commerce7:<tenant>', so N replicas together keep to the vendor's limit, not N times it.
-- `tokens` is the bucket's content at `refreshed_at`; it refills at the caller's rate up to the
-- caller's burst. A 429 empties the bucket and moves `refreshed_at` to the end of the pause.
CREATE TABLE rate_budgets (
    key          text             PRIMARY KEY,
    tokens       double precision NOT NULL,
    refreshed_at timestamptz      NOT NULL DEFAULT now()
);
