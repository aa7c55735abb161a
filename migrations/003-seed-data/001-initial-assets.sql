-- Migration: initial-assets
-- Date: 2025-09-21T00:00:04.000Z
-- Description: The assets users can trade on day one.

INSERT INTO assets (symbol, name, kind, currency) VALUES
    ('AAPL', 'Apple Inc.', 'stock', 'USD'),
    ('MSFT', 'Microsoft Corporation', 'stock', 'USD'),
    ('VTI', 'Vanguard Total Stock Market ETF', 'etf', 'USD'),
    ('BND', 'Vanguard Total Bond Market ETF', 'etf', 'USD'),
    ('BTC', 'Bitcoin', 'crypto', 'USD'),
    ('ETH', 'Ether', 'crypto', 'USD')
ON CONFLICT (symbol) DO NOTHING;
