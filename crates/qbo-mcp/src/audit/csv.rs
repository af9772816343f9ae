//! The audit log as CSV (`GET /api/v1/audit?format=csv`): a header row, then one row per
//! entry, newest first, read from the database a page at a time while the response streams,
//! so a year of entries never sits in memory. Cells follow RFC 4180 quoting, and a text cell
//! that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return) gets a leading `'`.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::stream;

use super::{Entry, Filter, read};
use crate::db::Db;

/// Entries read per database round trip.
const PAGE: i64 = 500;

/// The columns, in order.
pub const COLUMNS: &[&str] = &[
    "at",
    "username",
    "assistant",
    "action",
    "tool",
    "company",
    "outcome",
    "duration_ms",
    "intuit_tid",
    "company_name",
    "target",
    "details",
    "id",
];

/// One cell of text: quoted when it holds a comma, quote, or line break (or would be read as
/// a formula), with quotes doubled.
pub fn cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) || guarded != guarded.trim() {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn row(e: &Entry) -> String {
    let text = |v: &Option<String>| cell(v.as_deref().unwrap_or(""));
    let cells = [
        cell(&e.at),
        text(&e.username),
        text(&e.assistant),
        cell(&e.action),
        text(&e.tool),
        text(&e.company),
        cell(&e.outcome),
        e.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        text(&e.intuit_tid),
        text(&e.company_name),
        text(&e.target),
        cell(&e.details.to_string()),
        e.id.to_string(),
    ];
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

/// Where the export is: the header first, then pages below `filter.before` until `done`.
struct Cursor {
    db: Db,
    filter: Filter,
    header: bool,
    done: bool,
}

/// The CSV response for `filter` (its `limit` and `before` are the export's own).
pub fn export(db: Db, mut filter: Filter) -> Response {
    filter.limit = PAGE;
    let start = Cursor {
        db,
        filter,
        header: true,
        done: false,
    };
    let body = stream::unfold(start, |mut c| async move {
        if c.header {
            c.header = false;
            let mut line = COLUMNS.join(",");
            line.push_str("\r\n");
            return Some((Ok(Bytes::from(line)), c));
        }
        if c.done {
            return None;
        }
        match read(&c.db, &c.filter).await {
            Ok(entries) => {
                if entries.len() < PAGE as usize {
                    c.done = true;
                }
                let last = entries.last()?;
                c.filter.before = Some(last.id);
                let chunk: String = entries.iter().map(row).collect();
                Some((Ok(Bytes::from(chunk)), c))
            }
            Err(e) => {
                // The status is already sent: cut the body short so the download fails
                // visibly instead of ending as if complete.
                tracing::error!(error = %e.message, "audit export failed");
                c.done = true;
                Some((Err(std::io::Error::other("audit export failed")), c))
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@cmd"), "'@cmd");
        assert_eq!(cell("=1,2"), "\"'=1,2\"");
        assert_eq!(cell(" padded"), "\" padded\"");
        assert_eq!(cell(""), "");
    }
}
