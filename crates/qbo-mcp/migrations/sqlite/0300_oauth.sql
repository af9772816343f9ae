-- The authorization server for MCP clients (SPEC §6).
--
-- Clients: registered dynamically (RFC 7591, `kind = 'dcr'`) or known by their Client ID
-- Metadata Document (`kind = 'cimd'`, the client_id is the document's HTTPS URL; the row is
-- the cached document). Unused dynamic registrations are deleted after a day.
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    client_name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    metadata TEXT NOT NULL,
    registered_from TEXT,
    created_at BIGINT NOT NULL,
    fetched_at BIGINT NOT NULL
);
CREATE INDEX oauth_clients_registered_from ON oauth_clients (registered_from, created_at);

-- A person's consent to a client, remembered so the next authorization skips the page.
CREATE TABLE oauth_consents (
    person_id BIGINT NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (person_id, client_id)
);

-- What one authorization produced: the person, the client, and the tokens hanging off it.
-- Revoking a grant kills all its tokens. `person_stamp` is the person's security stamp when
-- the grant was made: a changed stamp (deactivation, password change) refuses the tokens.
CREATE TABLE oauth_grants (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    person_id BIGINT NOT NULL,
    person_stamp TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oauth_grants_person ON oauth_grants (person_id);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);

-- Authorization codes, by SHA-256 hash. `used_at` set: a second exchange is a replay, and
-- revokes `grant_id`, the grant the first exchange produced.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    person_id BIGINT NOT NULL,
    person_stamp TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    grant_id BIGINT
);
CREATE INDEX oauth_codes_expires ON oauth_codes (expires_at);

-- Access and refresh tokens, by SHA-256 hash. A refresh token's `parent_hash` is the token it
-- was rotated from; `retired_at` is set once its successor has been used, after which
-- presenting it again is reuse and revokes the grant.
CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id BIGINT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    parent_hash TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id, kind);
