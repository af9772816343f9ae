-- Company connections: one per QuickBooks company (realm), shared by everyone. Intuit's tokens
-- are sealed (see keys.rs); token_generation rises with every stored refresh, so a waiter can
-- tell that another replica refreshed while it waited for the lock.
CREATE TABLE companies (
    realm_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    status_detail TEXT,
    connected_by_person_id BIGINT,
    connected_by_username TEXT,
    intuit_user_sub TEXT,
    intuit_user_email TEXT,
    connected_at BIGINT,
    access_token TEXT,
    access_expires_at BIGINT,
    refresh_token TEXT,
    refresh_expires_at BIGINT,
    token_generation BIGINT NOT NULL,
    last_refresh_at BIGINT,
    updated_at BIGINT NOT NULL
);

-- Intuit authorization flows an admin started: the state is single-use, bound to that admin,
-- short-lived. Only its hash is stored.
CREATE TABLE connect_flows (
    state_hash TEXT PRIMARY KEY NOT NULL,
    person_id BIGINT NOT NULL,
    username TEXT NOT NULL,
    reconnect_realm_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX connect_flows_expires_at ON connect_flows (expires_at);

-- Upstream pacing shared by every replica: a token bucket per company and request class, and a
-- lease per request in flight (a crashed replica's leases expire).
CREATE TABLE quickbooks_budgets (
    realm_id TEXT NOT NULL,
    class TEXT NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (realm_id, class)
);
CREATE TABLE quickbooks_leases (
    lease_id TEXT PRIMARY KEY NOT NULL,
    realm_id TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX quickbooks_leases_realm ON quickbooks_leases (realm_id, expires_ms);
