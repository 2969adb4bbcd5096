-- Hawker's schema as it was before migrations: every statement is IF NOT EXISTS, so a database
-- made by an earlier release takes it as a no-op and is then migrated like a new one.
-- The in-memory owners decide; these constraints are the backstop and the truth after a restart.
--
-- Migrations are applied in order at start (`store::sqlite`, `sqlx::migrate!`) and recorded in
-- `_sqlx_migrations` with a checksum: never edit one that has shipped; add the next number.

CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('buyer', 'seller', 'moderator', 'admin')),
    blocked_words TEXT NOT NULL DEFAULT '',
    -- A seller's shipping fee per buyer per show (all of a buyer's items from a show ship together).
    shipping_fee_cents BIGINT NOT NULL DEFAULT 0 CHECK (shipping_fee_cents >= 0),
    -- A buyer's own cap on what they may commit to in 24 hours, checked at bid time (NULL: none).
    daily_spend_limit_cents BIGINT CHECK (daily_spend_limit_cents > 0),
    created_at BIGINT NOT NULL
);

-- Session cookies and API tokens, stored as SHA-256 of the secret.
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('session', 'api')),
    csrf TEXT,
    created_at BIGINT NOT NULL
);

-- Which users' sessions changed (a user updated or removed, a token removed or changed), counted
-- by the database itself so that every writer, another process included, tells every server:
-- each keeps sessions in memory and reads what changed every 2 s. The last 10,000 are kept.
-- (A new token or user needs no count: nothing can be cached about it yet. Replace a token with
-- UPDATE or DELETE, not INSERT OR REPLACE, which fires no delete trigger here.)
CREATE TABLE IF NOT EXISTS session_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS session_changes_pruned AFTER INSERT ON session_changes
BEGIN DELETE FROM session_changes WHERE seq <= NEW.seq - 10000; END;
CREATE TRIGGER IF NOT EXISTS user_updated_changes_sessions AFTER UPDATE ON users
BEGIN INSERT INTO session_changes (user_id) VALUES (OLD.id); END;
CREATE TRIGGER IF NOT EXISTS user_deleted_changes_sessions AFTER DELETE ON users
BEGIN INSERT INTO session_changes (user_id) VALUES (OLD.id); END;
CREATE TRIGGER IF NOT EXISTS token_updated_changes_sessions AFTER UPDATE ON tokens
BEGIN INSERT INTO session_changes (user_id) VALUES (OLD.user_id); END;
CREATE TRIGGER IF NOT EXISTS token_deleted_changes_sessions AFTER DELETE ON tokens
BEGIN INSERT INTO session_changes (user_id) VALUES (OLD.user_id); END;

CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    seller_id BIGINT NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    currency TEXT NOT NULL,
    images TEXT NOT NULL DEFAULT '',
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS variants (
    id INTEGER PRIMARY KEY,
    product_id BIGINT NOT NULL REFERENCES products(id),
    name TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents > 0),
    stock BIGINT NOT NULL CONSTRAINT variant_stock_nonnegative CHECK (stock >= 0),
    position BIGINT NOT NULL DEFAULT 0,
    -- A variant removed from a product stays for its orders but is no longer offered.
    listed BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE IF NOT EXISTS shows (
    id INTEGER PRIMARY KEY,
    seller_id BIGINT NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'live', 'ended')),
    scheduled_at BIGINT,
    started_at BIGINT,
    ended_at BIGINT,
    cover TEXT,
    stream_key TEXT NOT NULL UNIQUE,
    pinned_product_id BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS show_products (
    show_id BIGINT NOT NULL REFERENCES shows(id),
    product_id BIGINT NOT NULL REFERENCES products(id),
    position BIGINT NOT NULL,
    PRIMARY KEY (show_id, product_id)
);

CREATE TABLE IF NOT EXISTS flash_sales (
    id BIGINT PRIMARY KEY,
    show_id BIGINT NOT NULL REFERENCES shows(id),
    variant_id BIGINT NOT NULL REFERENCES variants(id),
    price_cents BIGINT NOT NULL CHECK (price_cents > 0),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    remaining BIGINT NOT NULL CONSTRAINT sale_remaining_nonnegative CHECK (remaining >= 0 AND remaining <= quantity),
    per_buyer_limit BIGINT NOT NULL CHECK (per_buyer_limit > 0),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'ended'))
);

CREATE TABLE IF NOT EXISTS codes (
    id BIGINT PRIMARY KEY,
    show_id BIGINT NOT NULL REFERENCES shows(id),
    code TEXT NOT NULL,
    percent_off BIGINT,
    amount_off_cents BIGINT,
    max_uses BIGINT NOT NULL CHECK (max_uses > 0),
    uses BIGINT NOT NULL DEFAULT 0 CONSTRAINT code_uses_within_cap CHECK (uses >= 0 AND uses <= max_uses),
    expires_at BIGINT,
    first_order_only BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (show_id, code)
);

CREATE TABLE IF NOT EXISTS orders (
    id BIGINT PRIMARY KEY,
    buyer_id BIGINT NOT NULL REFERENCES users(id),
    show_id BIGINT NOT NULL REFERENCES shows(id),
    variant_id BIGINT NOT NULL REFERENCES variants(id),
    sale_id BIGINT,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL,
    subtotal_cents BIGINT NOT NULL,
    discount_cents BIGINT NOT NULL CHECK (discount_cents >= 0),
    total_cents BIGINT NOT NULL CHECK (total_cents >= 0),
    currency TEXT NOT NULL,
    code_id BIGINT,
    -- Spelled out with OR, not IN: SQLite checks an IN list of more than two values by building a
    -- temporary table, on every insert and status change of an order (a third of the statement).
    status TEXT NOT NULL CHECK (status = 'reserved' OR status = 'paid' OR status = 'declined'
        OR status = 'expired' OR status = 'shipped' OR status = 'refunded'),
    hold_until BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    payment_ref TEXT,
    tracking TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The auction this order won; its unit was held by the auction, not taken from stock.
    auction_id BIGINT,
    -- The show's shipping fee, on the buyer's first order of the show only (combined shipping).
    shipping_cents BIGINT NOT NULL DEFAULT 0 CHECK (shipping_cents >= 0),
    CONSTRAINT orders_buyer_idempotency_key UNIQUE (buyer_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS orders_by_show ON orders (show_id, status);

-- Refunds decided (the order already says refunded, so nothing else can happen to it) whose
-- charge the payment provider has not yet confirmed refunded: retried until it has, so neither
-- a crash nor an unreachable provider between the two keeps a buyer's money.
CREATE TABLE IF NOT EXISTS refunds_due (
    order_id BIGINT PRIMARY KEY REFERENCES orders(id),
    charge TEXT NOT NULL,
    since BIGINT NOT NULL
);

-- Append-only: every stock, price, sale and code change, in decision order. A show's events carry
-- its show_id; a seller's catalog edits outside a show carry the product_id.
CREATE TABLE IF NOT EXISTS commerce_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    show_id BIGINT,
    product_id BIGINT,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    CHECK (show_id IS NOT NULL OR product_id IS NOT NULL)
);
-- Each line has one of the two; an index keeps no entries for lines without its column.
CREATE INDEX IF NOT EXISTS commerce_log_by_show ON commerce_log (show_id, seq) WHERE show_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS commerce_log_by_product ON commerce_log (product_id, seq) WHERE product_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS payment_methods (
    user_id BIGINT NOT NULL REFERENCES users(id),
    method TEXT NOT NULL,
    label TEXT NOT NULL,
    -- The highest is the buyer's default (charged when they win an auction).
    position BIGINT NOT NULL,
    PRIMARY KEY (user_id, method)
);

CREATE TRIGGER IF NOT EXISTS commerce_log_no_update BEFORE UPDATE ON commerce_log
BEGIN SELECT RAISE(ABORT, 'commerce_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS commerce_log_no_delete BEFORE DELETE ON commerce_log
BEGIN SELECT RAISE(ABORT, 'commerce_log is append-only'); END;

-- Live auctions. The log is the truth (hash-chained, append-only); this row is its summary.
CREATE TABLE IF NOT EXISTS auctions (
    id BIGINT PRIMARY KEY,
    show_id BIGINT NOT NULL REFERENCES shows(id),
    variant_id BIGINT NOT NULL REFERENCES variants(id),
    status TEXT NOT NULL CHECK (status IN ('running', 'ended')),
    ends_at BIGINT NOT NULL,
    winner TEXT,
    price_cents BIGINT,
    -- Secret per auction: bidder pseudonyms are hashes of it and the user id.
    salt TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS auction_log (
    auction_id BIGINT NOT NULL REFERENCES auctions(id),
    seq BIGINT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (auction_id, seq)
);
CREATE TRIGGER IF NOT EXISTS auction_log_no_update BEFORE UPDATE ON auction_log
BEGIN SELECT RAISE(ABORT, 'auction_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS auction_log_no_delete BEFORE DELETE ON auction_log
BEGIN SELECT RAISE(ABORT, 'auction_log is append-only'); END;

-- Who is behind each pseudonym (private: the public log shows only pseudonyms).
CREATE TABLE IF NOT EXISTS auction_bidders (
    auction_id BIGINT NOT NULL REFERENCES auctions(id),
    pseudonym TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    PRIMARY KEY (auction_id, pseudonym)
);

-- Maxima placed on a lineup variant before its auction starts; consumed when it starts.
CREATE TABLE IF NOT EXISTS pre_bids (
    show_id BIGINT NOT NULL REFERENCES shows(id),
    variant_id BIGINT NOT NULL REFERENCES variants(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    max_cents BIGINT NOT NULL CHECK (max_cents > 0),
    placed_at BIGINT NOT NULL,
    PRIMARY KEY (show_id, variant_id, user_id)
);
