-- What a tool call did at QuickBooks, beside the summary in `details`: the assistant it came
-- through, how long it took and Intuit's request id (`intuit_tid`). A write's entry is written
-- with outcome `pending` before its request goes to QuickBooks and completed after
-- (docs/reference.md, "Audit"); the company index serves the company page's recent calls.
ALTER TABLE audit_entries ADD COLUMN assistant TEXT;
ALTER TABLE audit_entries ADD COLUMN duration_ms BIGINT;
ALTER TABLE audit_entries ADD COLUMN intuit_tid TEXT;
CREATE INDEX audit_entries_company_at ON audit_entries (company, at);
