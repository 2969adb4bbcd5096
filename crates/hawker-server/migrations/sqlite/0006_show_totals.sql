-- What an owner reads when it starts must not grow with a show's history: a show that has been
-- live for days has millions of orders, and its owner (with every other show's waiting to open
-- behind it) would read them all before taking the next buy.

-- The host's totals (paid and shipped orders, their units and revenue), kept by the group commit
-- that pays an order and the refund that takes it back, instead of summed over every order.
ALTER TABLE shows ADD COLUMN paid_orders BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shows ADD COLUMN paid_units BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shows ADD COLUMN paid_revenue_cents BIGINT NOT NULL DEFAULT 0;
UPDATE shows SET
    paid_orders = (SELECT COUNT(*) FROM orders o
                   WHERE o.show_id = shows.id AND o.status IN ('paid', 'shipped')),
    paid_units = (SELECT COALESCE(SUM(quantity), 0) FROM orders o
                  WHERE o.show_id = shows.id AND o.status IN ('paid', 'shipped')),
    paid_revenue_cents = (SELECT COALESCE(SUM(total_cents), 0) FROM orders o
                          WHERE o.show_id = shows.id AND o.status IN ('paid', 'shipped'));

-- The orders that carry a buyer's shipping fee: one per buyer and show, and an index entry only
-- for those, so finding them reads no other order.
CREATE INDEX orders_carrying_shipping ON orders (show_id) WHERE shipping_cents > 0;
