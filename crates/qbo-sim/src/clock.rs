//! The simulator's clock: real time plus an offset that tests move forward
//! (`POST /_sim/advance-clock`) instead of sleeping through token lifetimes.
//! Company times are written in Intuit's style, in the companies' Pacific time zone
//! (fixed at UTC−8: the simulator knows no daylight saving).

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// Real time shifted by a settable number of seconds.
#[derive(Debug, Default)]
pub struct SimClock {
    offset_s: AtomicI64,
}

impl SimClock {
    /// The simulator's present.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.offset_s.load(Ordering::Relaxed))
    }

    /// Moves the present forward (or back, with a negative number).
    pub fn advance(&self, seconds: i64) {
        self.offset_s.fetch_add(seconds, Ordering::Relaxed);
    }

    /// Back to real time.
    pub fn reset(&self) {
        self.offset_s.store(0, Ordering::Relaxed);
    }

    /// The companies' current date.
    pub fn today(&self) -> NaiveDate {
        company_time(self.now()).date_naive()
    }
}

/// The companies' time zone.
pub fn company_zone() -> FixedOffset {
    // -8 h is within FixedOffset's ±24 h range, so this never fails.
    FixedOffset::west_opt(8 * 3600).expect("UTC-8 is a valid offset")
}

/// A moment in the companies' zone.
pub fn company_time(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&company_zone())
}

/// `2026-11-23T04:05:06-08:00`, as in `MetaData`.
pub fn metadata_time(at: DateTime<Utc>) -> String {
    company_time(at).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// `2026-11-23T04:05:06.789-08:00`, as in a response's `time`.
pub fn response_time(at: DateTime<Utc>) -> String {
    company_time(at)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// Reads the date and time forms Intuit accepts in queries and `changedSince`.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return naive
            .and_local_timezone(company_zone())
            .single()
            .map(|t| t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    date.and_hms_opt(0, 0, 0)?
        .and_local_timezone(company_zone())
        .single()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_intuit_times() {
        let clock = SimClock::default();
        let before = clock.now();
        clock.advance(3600);
        assert!(clock.now() - before >= chrono::Duration::seconds(3600));
        let text = metadata_time(before);
        assert!(text.ends_with("-08:00"), "{text}");
        let parsed = parse_time(&text).expect("parses");
        assert_eq!(parsed.timestamp(), before.timestamp());
        assert!(parse_time("2026-01-02").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
