//! Time as the server stores and shows it: Unix seconds (UTC) in the database, RFC 3339 in the
//! JSON API, `2026-11-30 22:36 UTC` on pages. The one place these are defined.

/// The current time in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Unix seconds as RFC 3339 (UTC), the time format of the JSON API.
pub fn time_text(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Unix seconds as people read them on pages: `2026-11-30 22:36 UTC`.
pub fn time_display(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_text_is_rfc3339_utc() {
        assert_eq!(time_text(0), "1970-01-01T00:00:00Z");
        assert_eq!(time_text(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(time_display(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
