-- The orders example's data: runs on SQLite and on PostgreSQL alike (evalkit copies or templates it per case).
CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
CREATE TABLE orders (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id), item TEXT NOT NULL,
    status TEXT NOT NULL, total_cents INTEGER NOT NULL, address TEXT NOT NULL
);
CREATE TABLE refunds (
    id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders (id), amount_cents INTEGER NOT NULL,
    reason TEXT NOT NULL, idempotency_key TEXT UNIQUE
);
CREATE TABLE emails (id TEXT PRIMARY KEY, to_addr TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE notes (id TEXT PRIMARY KEY, order_id TEXT NOT NULL, text TEXT NOT NULL);

INSERT INTO customers VALUES
    ('C1', 'Maria Lopez', 'maria@example.com'),
    ('C2', 'Sam Okafor', 'sam@example.com'),
    ('C3', 'Lena Fischer', 'lena@example.com');
INSERT INTO orders VALUES
    ('A1001', 'C1', 'blue kettle', 'placed', 3999, '12 Harbour Road, Leith'),
    ('A1002', 'C1', 'tea towels (3)', 'shipped', 1250, '12 Harbour Road, Leith'),
    ('A1003', 'C2', 'desk lamp', 'delivered', 5400, '4 Mill Lane, Hebden'),
    ('A1004', 'C2', 'phone stand', 'processing', 1500, '4 Mill Lane, Hebden'),
    ('A1005', 'C3', 'wool blanket', 'delivered', 8900, '9 Canal Street, Ghent'),
    ('A1006', 'C3', 'espresso cups', 'cancelled', 2400, '9 Canal Street, Ghent'),
    ('A1007', 'C1', 'bread bin', 'placed', 2750, '12 Harbour Road, Leith'),
    ('A1008', 'C2', 'notebook set', 'delivered', 1800, '4 Mill Lane, Hebden');
INSERT INTO refunds VALUES ('R1', 'A1006', 2400, 'cancelled before shipping', NULL);
