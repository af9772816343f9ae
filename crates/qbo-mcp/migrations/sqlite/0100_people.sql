-- People, their sign-in methods and what they may reach (SPEC §4). Usernames and emails are
-- stored lower-cased, so the unique constraints are case-insensitive by construction.
CREATE TABLE persons (
    id INTEGER PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    role TEXT NOT NULL,
    is_active BOOLEAN NOT NULL,
    force_password_change BOOLEAN NOT NULL,
    completed_onboarding BOOLEAN NOT NULL,
    -- Argon2id PHC string; NULL for people who sign in only through the identity provider
    -- or have not accepted their invitation yet.
    password_hash TEXT,
    -- Changes on deactivation: every session, token and OAuth grant issued under the old
    -- stamp stops working on the next request, on every replica.
    security_stamp TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT
);
CREATE INDEX persons_role_active ON persons (role, is_active);

-- Identity-provider logins, linked by issuer + subject (never by email alone).
CREATE TABLE identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    person_id BIGINT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX identities_person ON identities (person_id);

-- Browser sessions. The cookie holds a random value; only its SHA-256 is stored.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    person_id BIGINT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    stamp TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_person ON sessions (person_id);

-- Personal access tokens: shown once, stored as SHA-256.
CREATE TABLE personal_tokens (
    id INTEGER PRIMARY KEY NOT NULL,
    person_id BIGINT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    stamp TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX personal_tokens_person ON personal_tokens (person_id);

-- One-time links to set a password: invitations, password resets and first-run setup.
CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY NOT NULL,
    person_id BIGINT REFERENCES persons (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX invitations_person ON invitations (person_id);

-- Who may sign in through the identity provider: an exact email or `@domain`.
CREATE TABLE allowlist (
    id INTEGER PRIMARY KEY NOT NULL,
    pattern TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Which companies a non-admin may use. No foreign key to a companies table on purpose: a
-- grant may be made before the company is connected, and outlives a disconnect/reconnect.
CREATE TABLE company_grants (
    realm_id TEXT NOT NULL,
    person_id BIGINT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (realm_id, person_id)
);
CREATE INDEX company_grants_person ON company_grants (person_id);

-- Failed sign-ins per bucket (`name:<username>`, `addr:<ip>`), shared by every replica.
CREATE TABLE signin_failures (
    bucket TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL
);

-- Identity-provider sign-ins in flight: state → PKCE verifier and nonce (sealed).
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY NOT NULL,
    sealed TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The audit log: every administrative action and every tool call.
CREATE TABLE audit_entries (
    id INTEGER PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    username TEXT,
    action TEXT NOT NULL,
    target TEXT,
    tool TEXT,
    company TEXT,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_entries_at ON audit_entries (at);
CREATE INDEX audit_entries_username_at ON audit_entries (username, at);
