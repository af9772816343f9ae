//! How tool results read: an entity named as people name it in summaries (`Customer 27
//! (Acme)`), and a query cut into pages the model continues with `cursor` (a default cap of
//! [`DEFAULT_ROWS`], a count of the rows after the page).

use serde_json::Value;

use super::books::QueryArgs;
use super::tools::ToolError;
use crate::quickbooks::operations::split_paging;

/// An entity as people name it: `Customer 27 (Acme)`, `Invoice 130 (No. 1045, 250.00 USD)`,
/// from what QuickBooks answered (`value`, the entity's JSON) where it says more than the id.
pub fn named(entity: &str, id: &str, value: Option<&Value>) -> String {
    let Some(v) = value else {
        return format!("{entity} {id}");
    };
    let id = v["Id"].as_str().unwrap_or(id);
    let mut about = Vec::new();
    if let Some(name) = ["DisplayName", "Name", "FullyQualifiedName", "CompanyName"]
        .iter()
        .find_map(|k| v[*k].as_str())
    {
        about.push(name.to_owned());
    }
    if let Some(doc) = v["DocNumber"].as_str() {
        about.push(format!("No. {doc}"));
    }
    if let Some(total) = v["TotalAmt"].as_f64() {
        let currency = v["CurrencyRef"]["value"].as_str().unwrap_or_default();
        about.push(format!("{total:.2} {currency}").trim_end().to_owned());
    }
    if about.is_empty() {
        format!("{entity} {id}")
    } else {
        format!("{entity} {id} ({})", about.join(", "))
    }
}

/// Rows a `query` answers when it names no page size.
pub const DEFAULT_ROWS: usize = 100;

/// A query split into its page: the query without paging, the first row (1-based) and the
/// page size, from the query's own `STARTPOSITION`/`MAXRESULTS`, `cursor`, `limit`.
pub fn page_of(args: &QueryArgs) -> Result<(String, usize, usize), ToolError> {
    let (base, start, max) = split_paging(args.query.trim().trim_end_matches(';'));
    let start = match args.cursor.as_deref() {
        Some(c) => c.trim().parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ToolError(format!(
                "`cursor` `{c}` is not one this server gave; pass the `next_cursor` of the previous answer, or omit it for the first rows."
            ))
        })?,
        None => start.unwrap_or(1).max(1),
    };
    let size = match (max, args.limit) {
        (Some(m), _) => m,
        (None, Some(l)) if (1..=1000).contains(&l) => l as usize,
        (None, Some(_)) => return Err(ToolError("`limit` must be between 1 and 1000.".into())),
        (None, None) if args.fetch_all == Some(true) => 1000,
        (None, None) => DEFAULT_ROWS,
    };
    Ok((base, start, size))
}

/// `SELECT COUNT(*) FROM …` for the same rows as `base` (its selection replaced).
pub fn count_query(base: &str) -> Option<String> {
    let upper = base.to_ascii_uppercase();
    let from = upper.find(" FROM ")?;
    Some(format!("SELECT COUNT(*){}", &base[from..]))
}
