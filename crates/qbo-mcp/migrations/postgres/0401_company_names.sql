-- Tool calls name a company by realm id or by name in any case (mcp/books.rs, `company`): this
-- index lets that lookup read one row instead of every company.
CREATE INDEX companies_name_lower ON companies (lower(name));
