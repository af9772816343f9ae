//! Intuit's webhooks: after each change, a `POST` of `{"eventNotifications":[{"realmId",
//! "dataChangeEvent":{"entities":[{"name","id","operation","lastUpdated"}]}}]}` to the
//! configured URL, signed in `intuit-signature` with base64(HMAC-SHA256(body)) under the
//! app's verifier token. Sent at once, one notification per change (Intuit gathers them
//! for a few minutes); delivery never delays or fails the API call that caused it.

use crate::simulator::SimState;
use crate::stats::Counter;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;

/// One changed entity.
#[derive(Debug, Clone)]
pub struct Change {
    pub entity: &'static str,
    pub id: String,
    /// `Create`, `Update`, `Delete`, `Void` or `Emailed`.
    pub operation: &'static str,
}

/// The notification body for changes in one company.
pub fn notification(
    realm_id: &str,
    changes: &[Change],
    at: chrono::DateTime<chrono::Utc>,
) -> Value {
    let stamp = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let entities: Vec<Value> = changes
        .iter()
        .map(|c| json!({"name": c.entity, "id": c.id, "operation": c.operation, "lastUpdated": stamp}))
        .collect();
    json!({"eventNotifications": [{"realmId": realm_id, "dataChangeEvent": {"entities": entities}}]})
}

/// base64(HMAC-SHA256(body)) under the verifier token, as in `intuit-signature`.
pub fn signature(verifier_token: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(verifier_token.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Sends the changes to the configured URL in the background, if one is configured.
pub fn notify(state: &Arc<SimState>, realm_id: &str, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    let (url, token) = {
        let config = state.config.read();
        match &config.webhook_url {
            Some(url) => (url.clone(), config.webhook_verifier_token.clone()),
            None => return,
        }
    };
    let body = notification(realm_id, &changes, state.clock.now()).to_string();
    let signed = signature(&token, body.as_bytes());
    let state = state.clone();
    let realm = realm_id.to_owned();
    tokio::spawn(async move {
        let sent = state
            .webhook_client
            .post(&url)
            .header("intuit-signature", signed)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                state.stats.count(Counter::WebhooksSent, Some(&realm))
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), %url, "webhook refused");
                state.stats.count(Counter::WebhookFailures, Some(&realm));
            }
            Err(error) => {
                tracing::warn!(%error, %url, "webhook not delivered");
                state.stats.count(Counter::WebhookFailures, Some(&realm));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_intuit() {
        // base64(HMAC-SHA256("body", key "key")), computed independently.
        assert_eq!(
            signature("key", b"body"),
            "UVquEztDXUAAlWcx9orlz164XU8NxqVG0r/NNZXsGuE="
        );
        let body = notification(
            "1",
            &[Change {
                entity: "Customer",
                id: "7".into(),
                operation: "Create",
            }],
            chrono::Utc::now(),
        );
        assert_eq!(
            body["eventNotifications"][0]["dataChangeEvent"]["entities"][0]["operation"],
            "Create"
        );
    }
}
