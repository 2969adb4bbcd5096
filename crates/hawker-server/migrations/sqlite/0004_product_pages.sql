-- A seller's products are listed a page at a time, the active ones first, newest first within
-- each: a page is a range of this index (one per `archived` value it reaches).
CREATE INDEX products_by_seller ON products (seller_id, archived, id);

-- A product's listed variants, in their order: every product read, and a page of products in
-- one query. Without it each read scanned every variant of every seller. Order commits change
-- only `stock`, which this index does not hold, so it costs them nothing.
CREATE INDEX variants_by_product ON variants (product_id, position);
