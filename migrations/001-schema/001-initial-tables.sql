-- Migration: initial-tables
-- Date: 2025-09-21T00:00:00.000Z
-- Description: Users, assets, portfolios and trades: the core of the trading app.

-- ============================================
-- IMPORTANT: This migration is immutable once applied!
-- Do not modify this file after it has been run in any environment.
-- ============================================

CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    display_name text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assets (
    id       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol   text NOT NULL UNIQUE,
    name     text NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('stock', 'etf', 'crypto', 'bond')),
    currency char(3) NOT NULL DEFAULT 'USD'
);

CREATE TABLE portfolios (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL,
    cash       numeric(14, 2) NOT NULL DEFAULT 0 CHECK (cash >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);

CREATE TABLE trades (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    portfolio_id bigint NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    asset_id     integer NOT NULL REFERENCES assets (id),
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity     numeric(18, 8) NOT NULL CHECK (quantity > 0),
    price        numeric(14, 4) NOT NULL CHECK (price >= 0),
    executed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX trades_portfolio_idx ON trades (portfolio_id, executed_at DESC);
