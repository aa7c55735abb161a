-- Migration: portfolio-value
-- Date: 2025-09-21T00:00:03.000Z
-- Description: Value of a portfolio: cash plus holdings at the latest known prices.

CREATE OR REPLACE FUNCTION portfolio_value(p_portfolio_id bigint)
RETURNS numeric
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    holdings numeric;
BEGIN
    -- Net quantity per asset; a semicolon in a comment does not end the body;
    SELECT coalesce(sum(h.quantity * coalesce(p.price, 0)), 0)
      INTO holdings
      FROM (
            SELECT asset_id,
                   sum(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) AS quantity
              FROM trades
             WHERE portfolio_id = p_portfolio_id
             GROUP BY asset_id
           ) h
      LEFT JOIN LATERAL (
            SELECT price FROM asset_prices ap
             WHERE ap.asset_id = h.asset_id
             ORDER BY priced_at DESC
             LIMIT 1
           ) p ON true;
    RETURN holdings + (SELECT cash FROM portfolios WHERE id = p_portfolio_id);
END;
$$;
