//! Intuit's `intuit_tid` response header: a unique id on every answer (errors and the OAuth
//! endpoints included), which support asks for and clients log. Shaped like Intuit's
//! (`1-<8 hex>-<24 hex>`): the start second, then a per-process random base plus a counter.

use axum::http::HeaderValue;
use axum::response::Response;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);
static BASE: LazyLock<(u64, u64)> = LazyLock::new(|| {
    let started = chrono::Utc::now().timestamp().max(0) as u64;
    (started & 0xffff_ffff, rand::random::<u64>() >> 16)
});

/// A fresh transaction id.
pub fn next() -> String {
    let (started, base) = *BASE;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("1-{started:08x}-{base:012x}{n:012x}")
}

/// Adds a fresh `intuit_tid` to an answer (an axum `map_response` layer).
pub async fn stamp(mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&next()) {
        response.headers_mut().insert("intuit_tid", value);
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_shaped_like_intuits() {
        let (a, b) = (super::next(), super::next());
        assert_ne!(a, b);
        assert_eq!(a.len(), 2 + 8 + 1 + 24);
        assert!(a.starts_with("1-"));
    }
}
