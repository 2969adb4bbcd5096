#!/usr/bin/env python3
"""The CPU a paid order's rows cost SQLite, on Hawker's own schema, and what slimming it would save.

Writes what a group commit writes for each paid order (the reservation: the order row, the sale's
counter, a log line; the confirmation: the status update, a log line, the saved card) in batches
of 1,000, with WAL and synchronous=FULL as `hawker serve` runs, and prints the process CPU per
order for each schema variant, three rounds:

    python3 bench/sqlite/order_rows.py            # every variant
    python3 bench/sqlite/order_rows.py base all   # some

Variants: base (the schema as its migrations build it), in_check (orders.status checked with IN, as before
9e6d345; SQLite builds a temporary table for it on every insert and status change), full_log
(commerce_log's indexes with NULL entries, as before 8e6624b), noautoinc (commerce_log without AUTOINCREMENT), rowid (orders.id as the rowid), noshowidx
(orders_by_show without status), all (every one of them); base-nofk is base with foreign keys
off. Python's own overhead is in every number alike; compare them with each other. Databases go
in the current directory (run it from the repository root, on the real disk).
"""
import json, os, sys, time, sqlite3

ROOT = os.path.dirname(os.path.abspath(__file__))
# The schema as the server builds it: its migrations, in order.
MIGRATIONS = os.path.join(ROOT, '../../crates/hawker-server/migrations/sqlite')
schema = '\n'.join(open(os.path.join(MIGRATIONS, f)).read() for f in sorted(os.listdir(MIGRATIONS)) if f.endswith('.sql'))
ORDER_STATUS_CHECK = """CHECK (status = 'reserved' OR status = 'paid' OR status = 'declined'
        OR status = 'expired' OR status = 'shipped' OR status = 'refunded')"""
def variant(name, s):
    if name == 'in_check':
        s = s.replace(ORDER_STATUS_CHECK, "CHECK (status IN ('reserved', 'paid', 'declined', 'expired', 'shipped', 'refunded'))")
    if name == 'full_log':
        s = s.replace(" WHERE show_id IS NOT NULL;", ";").replace(" WHERE product_id IS NOT NULL;", ";")
    if name in ('noautoinc','all'):
        s = s.replace("seq INTEGER PRIMARY KEY AUTOINCREMENT", "seq INTEGER PRIMARY KEY")
    if name in ('rowid','all'):
        s = s.replace("CREATE TABLE IF NOT EXISTS orders (\n    id BIGINT PRIMARY KEY", "CREATE TABLE IF NOT EXISTS orders (\n    id INTEGER PRIMARY KEY")
    if name in ('noshowidx','all'):
        s = s.replace("CREATE INDEX IF NOT EXISTS orders_by_show ON orders (show_id, status);", "CREATE INDEX IF NOT EXISTS orders_by_show ON orders (show_id);")
    assert s != schema or name in ('base', 'base-nofk'), f'variant {name} changed nothing'
    return s
def run(name, fk=True, n=20000, batch=1000):
    path = f'order-rows-{name}.db'
    for p in (path, path+'-wal', path+'-shm'):
        if os.path.exists(p): os.remove(p)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA journal_mode=WAL'); db.execute('PRAGMA synchronous=FULL')
    db.execute(f'PRAGMA foreign_keys={"ON" if fk else "OFF"}')
    db.executescript(variant(name, schema))
    db.execute("INSERT INTO users (id,email,password_hash,display_name,role,created_at) VALUES (1,'s','x','S','seller',0)")
    db.execute("BEGIN")
    for u in range(2, n+2):
        db.execute("INSERT INTO users (id,email,password_hash,display_name,role,created_at) VALUES (?,?,'x','B','buyer',0)", (u, f'b{u}'))
    db.execute("COMMIT")
    # minimal rows through whatever columns exist
    cols = lambda t: [r[1] for r in db.execute(f'PRAGMA table_info({t})')]
    def ins(t, vals):
        c = cols(t); req = {r[1]: r for r in db.execute(f'PRAGMA table_info({t})')}
        row = {}
        for k in c:
            if k in vals: row[k] = vals[k]
            elif req[k][3] and req[k][4] is None and not req[k][5]: row[k] = 1 if 'INT' in req[k][2] else 'x'
        db.execute(f"INSERT INTO {t} ({','.join(row)}) VALUES ({','.join('?'*len(row))})", list(row.values()))
    ins('products', {'id':1,'seller_id':1}); ins('variants', {'id':1,'product_id':1,'stock':100000})
    ins('shows', {'id':1,'seller_id':1,'status':'live'})
    ins('flash_sales', {'id':1,'show_id':1,'variant_id':1,'remaining':n,'quantity':n,'status':'running'})
    ev = json.dumps({"type":"reserved","order":{"id":123456789012,"buyer":99999,"variant_id":3,"sale_id":5,"quantity":1,"unit_price_cents":100,"subtotal_cents":100,"discount_cents":0,"total_cents":100,"currency":"USD","code_id":None,"hold_until":1764000000000,"auction_id":None,"shipping_cents":0},"left":8})
    pv = json.dumps({"type":"paid","order_id":123456789012,"buyer":99999,"variant_id":3,"sale_id":5,"quantity":1,"total_cents":100,"payment_ref":"ch_test_123456789012"})
    t0 = time.process_time(); w0 = time.time()
    oid = 1000
    for b in range(0, n, batch):
        ids = list(range(oid+b, oid+b+batch))
        db.execute("BEGIN IMMEDIATE")
        for i in ids:
            db.execute("INSERT INTO orders (id, buyer_id, show_id, variant_id, sale_id, quantity, unit_price_cents, subtotal_cents, discount_cents, total_cents, currency, code_id, status, hold_until, idempotency_key, payment_method, created_at, updated_at, auction_id, shipping_cents) VALUES (?, ?, 1, 1, 1, 1, 100, 100, 0, 100, 'USD', NULL, 'reserved', 0, ?, 'pm_card_visa', 0, 0, NULL, 0)", (i, i-oid+2, f'key-{i:020d}'))
        db.execute("UPDATE flash_sales SET remaining = remaining + ? WHERE id = 1", (-batch,))
        for i in ids: db.execute("INSERT INTO commerce_log (show_id, at, event) VALUES (1, 0, ?)", (ev,))
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        for i in ids:
            db.execute("UPDATE orders SET status = ?, payment_ref = COALESCE(?, payment_ref), updated_at = ? WHERE id = ? AND status = 'reserved'", ('paid', f'ch_test_{i}', 1, i))
        for i in ids: db.execute("INSERT INTO commerce_log (show_id, at, event) VALUES (1, 0, ?)", (pv,))
        for i in ids:
            db.execute("INSERT INTO payment_methods (user_id, method, label, position) VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(position), 0) + 1 FROM payment_methods WHERE user_id = ?1)) ON CONFLICT (user_id, method) DO NOTHING", (i-oid+2, 'pm_card_visa', 'Visa 4242'))
        db.execute("COMMIT")
    cpu = time.process_time() - t0
    db.close()
    for p in (path, path+'-wal', path+'-shm'):
        if os.path.exists(p): os.remove(p)
    return cpu / n * 1e6
names = sys.argv[1:] or ['base','in_check','full_log','noautoinc','rowid','noshowidx','all']
for rep in range(3):
    print(' '.join(f"{nm}={run(nm):.1f}us" for nm in names), f"base-nofk={run('base', fk=False):.1f}us", flush=True)
