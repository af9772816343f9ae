-- Four-eyes approvals (docs/tools.md, "Approvals"). One policy per company: which writes wait
-- for an admin's approval (`off`, `all_writes`, or `amount_at_least` with `amount`).
CREATE TABLE approval_policies (
    realm_id TEXT PRIMARY KEY NOT NULL,
    mode TEXT NOT NULL,
    amount DOUBLE PRECISION,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A write an assistant proposed, held until an admin approves or rejects it. `request` is the
-- exact request that approval sends (method, path, query, body: refs resolved, SyncToken
-- fixed), `request_id` the one QuickBooks `requestid` it is ever sent with. Approval claims the
-- row with `UPDATE … WHERE status = 'pending'`, so it executes at most once across replicas.
CREATE TABLE proposals (
    id TEXT PRIMARY KEY NOT NULL,
    realm_id TEXT NOT NULL,
    company_name TEXT NOT NULL,
    tool TEXT NOT NULL,
    request TEXT NOT NULL,
    request_id TEXT NOT NULL,
    amount DOUBLE PRECISION,
    status TEXT NOT NULL,
    proposed_by_id BIGINT NOT NULL,
    proposed_by TEXT NOT NULL,
    assistant TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    note TEXT,
    result TEXT,
    finished_at BIGINT
);
CREATE INDEX proposals_status ON proposals (status, created_at);
CREATE INDEX proposals_proposed_by ON proposals (proposed_by_id, created_at);
