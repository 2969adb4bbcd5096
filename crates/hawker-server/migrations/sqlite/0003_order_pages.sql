-- Orders are listed a page at a time, newest first, by seller and by show (keyset pagination:
-- `WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT n`). Each list needs
-- an index in that order, or every page reads and sorts the seller's whole history.

-- Who sells the order, copied from its show when the order is written, so a seller's orders are
-- one index range instead of a join through every show. No REFERENCES: the show (checked) names
-- the seller already, and a foreign key would be one more lookup on every order insert.
ALTER TABLE orders ADD COLUMN seller_id BIGINT;
UPDATE orders SET seller_id = (SELECT s.seller_id FROM shows s WHERE s.id = orders.show_id);
CREATE INDEX orders_by_seller ON orders (seller_id, created_at, id);

-- A show's orders in the same order. It replaces (show_id, status): each index costs every order
-- insert, and the reads by status are served by the partial index below.
DROP INDEX orders_by_show;
CREATE INDEX orders_by_show ON orders (show_id, created_at, id);

-- Reservations still open, a handful at any time: restoring owners and resuming payments after
-- a restart find them without reading all orders, and an order leaves this index when it settles.
CREATE INDEX orders_reserved ON orders (show_id) WHERE status = 'reserved';
