//! Signed OpenID `id_token`s and the JWKS that verifies them. The key is a fixed test key
//! shipped with the simulator (it guards nothing real), so tokens verify across restarts.
//!
//! Intuit's Python library decodes the token's header and payload with *standard* base64
//! before verifying it, which garbles the URL-safe letters `-` and `_`. Real Intuit tokens
//! happen to avoid them; this module makes sure ours do too, by writing any character that
//! would produce one as a JSON `\u00XX` escape (still the same JSON to every other reader).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

const SIGNING_KEY_PEM: &str = include_str!("signing_key.pem");
/// The modulus of `signing_key.pem`, base64url.
const MODULUS: &str = "3J2RvZzSBtTlYgPe81dGOFjcbDdp1d0fLcxdJjVqu60Mc120wzk1KtwfG2H69o5MAKID51ymlGhd-Ap94T4H9MxDY-1BO7UEM3ZuxPvfjPmLo9M5n5ga6gjijmpgDYsxSLX3pD9Wh_trNG4gw1wanew-xqmE8nZpBY77oK-MmzW_EXu80v7R84oZit1Eg67isFhstyR1CUpdc-tpceYNCP0nPsNal6nhKwATDuhBqI5CuU7h3sT9KEQF50IZtyVTBlK5z-8HgHE8kepMHd2BB6HjBNzZUnvIHhH53gqYqAa1LUizGRvub4S5PaDBnDx5hXUx0TYDeHSo3UmGiPfjBQ";
const EXPONENT: &str = "AQAB";
/// The key id in the JWKS and in every token header.
pub const KEY_ID: &str = "qbo-sim-r1";

/// Signs id_tokens with the simulator's key.
pub struct IdTokenSigner {
    key: EncodingKey,
}

impl std::fmt::Debug for IdTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenSigner([redacted])")
    }
}

impl IdTokenSigner {
    /// Loads the shipped key.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            key: EncodingKey::from_rsa_pem(SIGNING_KEY_PEM.as_bytes())?,
        })
    }

    /// A compact RS256 JWT of these claims.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let header = json!({"alg": "RS256", "kid": KEY_ID, "typ": "JWT"});
        let message = format!(
            "{}.{}",
            standard_safe_part(&header),
            standard_safe_part(claims)
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, Algorithm::RS256)?;
        Ok(format!("{message}.{signature}"))
    }
}

/// The JWKS document.
pub fn jwks() -> Value {
    json!({"keys": [{"kty": "RSA", "e": EXPONENT, "use": "sig", "kid": KEY_ID, "alg": "RS256", "n": MODULUS}]})
}

/// Whether a byte at this offset of the input would produce `-` or `_` in base64url.
fn unsafe_at(byte: u8, offset: usize) -> bool {
    match offset % 3 {
        1 => byte & 0x0f == 0x0f,
        2 => byte & 0x3f >= 0x3e,
        _ => false,
    }
}

/// Base64url of the JSON, written so that its text has neither `-` nor `_`.
fn standard_safe_part(value: &Value) -> String {
    let plain = value.to_string();
    let mut out = String::with_capacity(plain.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    for ch in plain.chars() {
        let offset = out.len();
        if in_string && !escaped && !ch.is_ascii() {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
            continue;
        }
        let risky = ch.is_ascii() && unsafe_at(ch as u8, offset);
        if in_string && !escaped && risky && ch != '"' && ch != '\\' {
            out.push_str(&format!("\\u{:04x}", ch as u32));
            continue;
        }
        if in_string && ch == '\\' && !escaped {
            escaped = true;
        } else {
            if ch == '"' && !escaped {
                in_string = !in_string;
            }
            escaped = false;
        }
        out.push(ch);
    }
    URL_SAFE_NO_PAD.encode(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_against_the_jwks_and_avoid_url_safe_letters() {
        let signer = IdTokenSigner::new().expect("key loads");
        let claims = json!({
            "sub": "1a2b0000-5e1d-4c0a-9b7e-000000510000", "aud": ["client-o_o?>~"],
            "iss": "http://127.0.0.1:4000/op/v1", "realmid": "9341453050298464",
            "exp": 4_000_000_000u64, "iat": 1_700_000_000u64, "auth_time": 1_700_000_000u64,
        });
        let token = signer.sign(&claims).expect("signs");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        for part in &parts[..2] {
            assert!(!part.contains('-') && !part.contains('_'), "{part}");
        }
        let key =
            jsonwebtoken::DecodingKey::from_rsa_components(MODULUS, EXPONENT).expect("jwks key");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&["client-o_o?>~"]);
        let decoded = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("verifies");
        assert_eq!(decoded.claims, claims);
        assert_eq!(decoded.header.kid.as_deref(), Some(KEY_ID));
    }
}
