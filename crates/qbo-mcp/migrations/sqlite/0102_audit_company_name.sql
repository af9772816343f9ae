-- The name of the company an audit entry concerns, beside its realm id: a tool call records
-- the company it resolved to (often the only one, with no `company` argument).
ALTER TABLE audit_entries ADD COLUMN company_name TEXT;
