-- Shows are listed a page at a time: the live ones first, then the scheduled, then the ended,
-- each latest first (by when they started, else are scheduled, else were made). A page is a
-- range of one of these per status it reaches: of the first for everyone's shows, of the second
-- for one seller's. (Shows are written rarely; orders never touch these.)
CREATE INDEX shows_by_status ON shows (status, COALESCE(started_at, scheduled_at, created_at), id);
CREATE INDEX shows_by_seller ON shows (seller_id, status, COALESCE(started_at, scheduled_at, created_at), id);
