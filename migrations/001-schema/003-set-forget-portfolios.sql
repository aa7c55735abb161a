-- Migration: set-forget-portfolios
-- Date: 2025-09-21T00:00:02.000Z
-- Description: "Set and forget" portfolios that rebalance to target weights.

ALTER TABLE portfolios
    ADD COLUMN strategy text NOT NULL DEFAULT 'manual'
        CHECK (strategy IN ('manual', 'set-and-forget'));

CREATE TABLE portfolio_targets (
    portfolio_id bigint NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    asset_id     integer NOT NULL REFERENCES assets (id),
    weight       numeric(5, 4) NOT NULL CHECK (weight > 0 AND weight <= 1),
    PRIMARY KEY (portfolio_id, asset_id)
);

CREATE TABLE asset_prices (
    asset_id  integer NOT NULL REFERENCES assets (id),
    priced_at timestamptz NOT NULL,
    price     numeric(14, 4) NOT NULL CHECK (price >= 0),
    PRIMARY KEY (asset_id, priced_at)
);
