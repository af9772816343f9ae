-- Which secret key sealed this database's data: a sealed known value per key id, so a
-- replica started with another key stops at once instead of failing later on a token.
CREATE TABLE secret_key_check (
    key_id TEXT PRIMARY KEY NOT NULL,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
