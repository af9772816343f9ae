-- Pacing is in memory on SQLite (quickbooks/pacing.rs), so nothing here reads this table; the
-- schema stays the same as PostgreSQL's, where 0403 turns lease rows into reusable slots.
ALTER TABLE quickbooks_leases ADD COLUMN holder TEXT;
DROP INDEX quickbooks_leases_realm;
CREATE INDEX quickbooks_leases_realm ON quickbooks_leases (realm_id);
