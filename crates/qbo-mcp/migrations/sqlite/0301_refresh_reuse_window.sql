-- Refresh-token rotation with a reuse window (docs/oauth.md, "Refresh tokens rotate").
--
-- `rotated_at`: when the token was first presented and a successor issued. It stays accepted
-- for the reuse window after that (a client racing itself, or retrying a lost answer), and only
-- while none of its successors has been used; presenting it later revokes the grant.
-- `forked_at`: set on a successor when its parent was presented again afterwards (a replay was
-- served); presenting such a successor means two holders exist, and revokes the grant.
-- `retired_at` (0300) is no longer written: its old meaning (successor used) implies rotated.
ALTER TABLE oauth_tokens ADD COLUMN rotated_at BIGINT;
ALTER TABLE oauth_tokens ADD COLUMN forked_at BIGINT;
UPDATE oauth_tokens SET rotated_at = retired_at WHERE retired_at IS NOT NULL;
