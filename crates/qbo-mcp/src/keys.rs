//! The secret key and sealing with it. The key (32 bytes) comes from `QBO_MCP_SECRET_KEY` or
//! from `secret.key` in the data directory, generated with mode 0600 on first run. `Sealer`
//! encrypts values at rest with XChaCha20-Poly1305: a random nonce per value, the caller's
//! associated data (the row id) binding a ciphertext to its row, and the key id stored with
//! it so keys can rotate. This module never logs a key or a plaintext.

use std::io::Write as _;
use std::path::Path;

use anyhow::anyhow;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::db::{Db, Tx};
use crate::on_tx;
use crate::secret::Secret;

/// Sealed values look like `v1.<key id>.<base64 nonce+ciphertext>`.
const FORMAT: &str = "v1";
const NONCE_LEN: usize = 24;
/// What the start-up check seals, to prove a key matches the database.
const CHECK_PLAINTEXT: &[u8] = b"qbo-mcp secret key check";

/// A 32-byte key with its public id.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Secret<[u8; 32]>,
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"qbo-mcp key id v1")
            .chain_update(bytes)
            .finalize();
        let id = hex(&digest[..8]);
        Self {
            bytes: Secret::new(bytes),
            id,
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(rand::random())
    }

    /// Parses base64 text (as in `QBO_MCP_SECRET_KEY` or `secret.key`).
    pub fn from_base64(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.trim().as_bytes()).ok()?;
        Some(Self::from_bytes(bytes.as_slice().try_into().ok()?))
    }

    pub fn to_base64(&self) -> Secret<String> {
        Secret::new(STANDARD.encode(self.bytes.expose()))
    }

    /// A short public fingerprint, stored beside every sealed value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The configured key, or the one in `data_dir/secret.key`, created on first run.
    pub fn load_or_create(
        configured: Option<&Secret<[u8; 32]>>,
        data_dir: &Path,
    ) -> anyhow::Result<SecretKey> {
        if let Some(bytes) = configured {
            return Ok(Self::from_bytes(*bytes.expose()));
        }
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text).ok_or_else(|| {
                anyhow!(
                    "The secret key file {} does not hold 32 bytes of base64; restore the original file or set QBO_MCP_SECRET_KEY.",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create_file(&path),
            Err(e) => Err(anyhow!(
                "Cannot read the secret key file {}: {e}. Fix its permissions or set QBO_MCP_SECRET_KEY.",
                path.display()
            )),
        }
    }

    fn create_file(path: &Path) -> anyhow::Result<SecretKey> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow!("Cannot create the data directory {}: {e}.", dir.display()))?;
        }
        let key = Self::generate();
        match key.write_file(path, true) {
            Ok(()) => {
                tracing::info!(path = %path.display(), key_id = key.id(), "generated a new secret key");
                Ok(key)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load_or_create(None, path.parent().unwrap_or(Path::new(".")))
            }
            Err(e) => Err(anyhow!(
                "Cannot create the secret key file {}: {e}.",
                path.display()
            )),
        }
    }

    /// Writes the key as base64 to `path`, readable only by its owner, and syncs it to disk.
    /// `fresh`: fail with `AlreadyExists` rather than replace a file.
    pub fn write_file(&self, path: &Path, fresh: bool) -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if fresh {
            options.create_new(true);
        } else {
            options.create(true).truncate(true);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        file.write_all(self.to_base64().expose().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }
}

/// A value could not be unsealed.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error("the sealed value is not in a format this version understands")]
    Malformed,
    #[error("the value was sealed with key {0}, which this server does not have")]
    UnknownKey(String),
    #[error("the value does not decrypt with its key and associated data")]
    Forged,
}

/// Seals and opens values with the current key; also opens values sealed with older keys
/// it was given (during rotation).
#[derive(Clone)]
pub struct Sealer {
    current: (String, XChaCha20Poly1305),
    older: Vec<(String, XChaCha20Poly1305)>,
    /// Derived from the current key; keys message authentication codes (e.g. CSRF tokens).
    mac_key: Secret<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.current.0)
            .finish_non_exhaustive()
    }
}

fn cipher(key: &SecretKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&Key::from(*key.bytes.expose()))
}

impl Sealer {
    pub fn new(key: &SecretKey) -> Self {
        let mac_key: [u8; 32] = Sha256::new()
            .chain_update(b"qbo-mcp mac key v1")
            .chain_update(key.bytes.expose())
            .finalize()
            .into();
        Self {
            current: (key.id().to_owned(), cipher(key)),
            older: Vec::new(),
            mac_key: Secret::new(mac_key),
        }
    }

    /// HMAC-SHA256 of `message` under a key derived from the secret key, separated by
    /// `purpose`: the same on every replica that shares the key, unforgeable without it.
    pub fn mac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(self.mac_key.expose())
            .expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Also accept values sealed under `key` (rotation).
    pub fn with_older(mut self, key: &SecretKey) -> Self {
        self.older.push((key.id().to_owned(), cipher(key)));
        self
    }

    pub fn key_id(&self) -> &str {
        &self.current.0
    }

    /// Encrypts `plaintext`, bound to `associated` (e.g. `b"connection:42:refresh_token"`).
    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> String {
        let nonce = XNonce::generate();
        let ciphertext = self
            .current
            .1
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            // XChaCha20-Poly1305 only fails for messages beyond 256 GiB.
            .unwrap_or_default();
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(nonce.as_slice());
        blob.extend_from_slice(&ciphertext);
        format!(
            "{FORMAT}.{}.{}",
            self.current.0,
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    /// Decrypts a value made by [`Sealer::seal`] with the same associated data.
    pub fn open(&self, sealed: &str, associated: &[u8]) -> Result<Secret<Vec<u8>>, UnsealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(FORMAT), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(UnsealError::Malformed);
        };
        let cipher = std::iter::once(&self.current)
            .chain(self.older.iter())
            .find(|(id, _)| id == key_id)
            .map(|(_, c)| c)
            .ok_or_else(|| UnsealError::UnknownKey(key_id.to_owned()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| UnsealError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(UnsealError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| UnsealError::Malformed)?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: associated,
                },
            )
            .map(Secret::new)
            .map_err(|_| UnsealError::Forged)
    }

    /// The key id of a sealed value, without opening it.
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        let mut parts = sealed.splitn(3, '.');
        match (parts.next(), parts.next()) {
            (Some(FORMAT), Some(id)) => Some(id),
            _ => None,
        }
    }
}

/// Start-up check that `sealer`'s key is the one this database's data was sealed with.
/// The first server to start on an empty database records its key.
pub async fn check_key(db: &Db, sealer: &Sealer) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    let rows: Vec<(String, String)> = on_tx!(&mut tx, conn => {
        sqlx::query_as("SELECT key_id, sealed FROM secret_key_check ORDER BY created_at")
            .fetch_all(&mut *conn)
            .await?
    });
    if rows.is_empty() {
        record_check(&mut tx, sealer).await?;
        tx.commit().await?;
        return Ok(());
    }
    tx.rollback().await?;
    match rows.iter().find(|(id, _)| id == sealer.key_id()) {
        Some((_, sealed)) => match sealer.open(sealed, b"secret_key_check") {
            Ok(plain) if plain.expose().as_slice() == CHECK_PLAINTEXT => Ok(()),
            _ => Err(anyhow!(
                "The secret key check stored in the database is damaged; restore the database from a backup."
            )),
        },
        None => Err(anyhow!(
            "The secret key (id {}) is not the key this database was sealed with (id {}). Set QBO_MCP_SECRET_KEY, or restore secret.key in the data directory, to the key used before.",
            sealer.key_id(),
            rows.iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Makes `sealer`'s key the only one this database accepts from now on (key rotation, inside
/// the transaction that re-sealed every value under it).
pub async fn record_rotation(tx: &mut Tx, sealer: &Sealer) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query("DELETE FROM secret_key_check").execute(&mut *conn).await?;
    });
    record_check(tx, sealer).await
}

/// Records `sealer`'s key as one this database's data is sealed with.
async fn record_check(tx: &mut Tx, sealer: &Sealer) -> Result<(), sqlx::Error> {
    let sealed = sealer.seal(CHECK_PLAINTEXT, b"secret_key_check");
    on_tx!(tx, conn => {
        sqlx::query("INSERT INTO secret_key_check (key_id, sealed, created_at) VALUES ($1, $2, $3)")
            .bind(sealer.key_id())
            .bind(&sealed)
            .bind(chrono::Utc::now().timestamp())
            .execute(&mut *conn)
            .await?;
    });
    Ok(())
}

/// Whether `key_id` is still this database's key (no other key has been recorded): a replica
/// started before a rotation must not seal fresh tokens under the retired key.
pub async fn is_current(tx: &mut Tx, key_id: &str) -> Result<bool, sqlx::Error> {
    let others: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT COUNT(*) FROM secret_key_check WHERE key_id <> $1")
            .bind(key_id)
            .fetch_one(&mut *conn)
            .await?
    });
    Ok(others == 0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let sealer = Sealer::new(&SecretKey::generate());
        let sealed = sealer.seal(b"refresh-token-value", b"connection:1:refresh");
        assert!(!sealed.contains("refresh-token-value"));
        let plain = sealer.open(&sealed, b"connection:1:refresh").unwrap();
        assert_eq!(plain.expose().as_slice(), b"refresh-token-value");
        assert_eq!(Sealer::key_id_of(&sealed), Some(sealer.key_id()));
    }

    #[test]
    fn the_row_id_binds_the_ciphertext() {
        let sealer = Sealer::new(&SecretKey::generate());
        let sealed = sealer.seal(b"x", b"connection:1");
        assert!(matches!(
            sealer.open(&sealed, b"connection:2"),
            Err(UnsealError::Forged)
        ));
    }

    #[test]
    fn a_wrong_key_is_refused() {
        let a = Sealer::new(&SecretKey::generate());
        let b = Sealer::new(&SecretKey::generate());
        let sealed = a.seal(b"x", b"row");
        assert!(matches!(
            b.open(&sealed, b"row"),
            Err(UnsealError::UnknownKey(_))
        ));
        let rotated = b.with_older(&SecretKey::from_bytes([7; 32]));
        assert!(rotated.open(&sealed, b"row").is_err());
    }

    #[test]
    fn older_keys_open_during_rotation() {
        let old = SecretKey::generate();
        let sealed = Sealer::new(&old).seal(b"x", b"row");
        let new = Sealer::new(&SecretKey::generate()).with_older(&old);
        assert_eq!(new.open(&sealed, b"row").unwrap().expose().as_slice(), b"x");
    }

    #[test]
    fn tampering_is_detected() {
        let sealer = Sealer::new(&SecretKey::generate());
        let mut sealed = sealer.seal(b"hello", b"row");
        let last = sealed.pop().unwrap();
        sealed.push(if last == 'A' { 'B' } else { 'A' });
        assert!(sealer.open(&sealed, b"row").is_err());
        assert!(matches!(
            sealer.open("nope", b"row"),
            Err(UnsealError::Malformed)
        ));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::load_or_create(None, dir.path()).unwrap();
        let b = SecretKey::load_or_create(None, dir.path()).unwrap();
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_bad_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.key"), "not a key").unwrap();
        let err = SecretKey::load_or_create(None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("does not hold 32 bytes"), "{err}");
        let debug = format!("{:?}", SecretKey::generate());
        assert!(debug.starts_with("SecretKey { id:"), "{debug}");
    }
}
