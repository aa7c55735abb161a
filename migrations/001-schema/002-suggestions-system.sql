-- Migration: suggestions-system
-- Date: 2025-09-21T00:00:01.000Z
-- Description: Trade suggestions shown to users, and whether they acted on them.

CREATE TABLE suggestions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    asset_id    integer NOT NULL REFERENCES assets (id),
    action      text NOT NULL CHECK (action IN ('buy', 'sell', 'hold')),
    rationale   text NOT NULL,
    confidence  numeric(3, 2) NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    status      text NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'accepted', 'dismissed', 'expired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);

CREATE INDEX suggestions_open_idx ON suggestions (user_id) WHERE status = 'open';
