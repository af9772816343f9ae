//! `Secret<T>`: a value that must never reach a log. Its `Debug` and `Display` print
//! `[redacted]`; reading it takes an explicit `expose()`, which is easy to grep for.

use std::fmt;

/// A secret value (password, token, key, a URL with a password in it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself. Call sites are the only places a secret is read.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

/// A new bearer secret: `prefix` followed by 256 random bits in base64url (e.g. `qbo_pat_…`).
/// Store only [`token_hash`] of it; with this much entropy a slow hash adds nothing.
pub fn new_token(prefix: &str) -> Secret<String> {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    Secret::new(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The stored form of a bearer secret: lower-case hex SHA-256. Computed on every
/// authenticated request, so it writes the hex into one buffer (no `format!` per byte).
pub fn token_hash(token: &str) -> String {
    use sha2::Digest as _;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    hex
}

/// A database URL with any password replaced, safe to print in errors and logs.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("redacted"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let a = new_token("qbo_pat_");
        let b = new_token("qbo_pat_");
        assert!(a.expose().starts_with("qbo_pat_"));
        assert_eq!(a.expose().len(), "qbo_pat_".len() + 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(a.expose()).len(), 64);
        assert_eq!(token_hash("x"), token_hash("x"));
        assert_ne!(token_hash(a.expose()), token_hash(b.expose()));
        // The stored form must not change: existing rows are looked up by it.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn url_password_is_redacted() {
        let r = redact_url("postgres://me:hunter2@db.example:5432/x");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("redacted"));
    }
}
