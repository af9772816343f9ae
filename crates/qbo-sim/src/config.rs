//! The simulator's knobs: Intuit's real numbers by default, each one changeable at start
//! (`--config FILE`, TOML or JSON) and while running (`POST /_sim/config`).
//!
//! A patch with a key this module does not know is refused, so a typo in a test never passes
//! silently as "Intuit's default".

use serde::{Deserialize, Serialize};

/// Who `/connect/oauth2` approves as at once, without showing the consent page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoConsent {
    /// Email of a simulated QuickBooks user.
    pub email: String,
    /// The company to connect; `None` picks the first company where the user is an admin.
    #[serde(default)]
    pub realm_id: Option<String>,
}

impl AutoConsent {
    /// Parses the command line form `EMAIL[:REALM]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (email, realm) = match text.split_once(':') {
            Some((email, realm)) => (email, Some(realm.to_owned())),
            None => (text, None),
        };
        if !email.contains('@') {
            return Err(format!("`{text}` is not EMAIL or EMAIL:REALM"));
        }
        Ok(Self {
            email: email.to_owned(),
            realm_id: realm.filter(|r| !r.is_empty()),
        })
    }
}

/// Every behaviour of the simulator that a test may want to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Access token lifetime (Intuit: one hour).
    pub access_token_lifetime_s: u64,
    /// Rolling refresh token lifetime (Intuit: 100 days).
    pub refresh_token_lifetime_s: u64,
    /// Hard maximum lifetime of a chain of refresh tokens since the code exchange (Intuit,
    /// since late 2025: 5 years), whatever the rolling lifetime says.
    pub refresh_token_max_lifetime_s: u64,
    /// Inside this interval after a refresh token value was issued, a refresh returns the same
    /// value (Intuit: about a day).
    pub rotation_interval_s: u64,
    /// How long a refresh token stays usable after it was rotated (Intuit today: 0).
    pub refresh_grace_s: u64,
    /// Whether a second admin authorizing the same app moves the connection to them.
    pub change_admin: bool,
    /// API requests per minute per company and app (Intuit: 500).
    pub rate_limit_per_minute: u32,
    /// Report requests per minute per company and app (Intuit: 200).
    pub report_rate_limit_per_minute: u32,
    /// Batch requests per minute per company and app (Intuit: 120).
    pub batch_rate_limit_per_minute: u32,
    /// Concurrent API requests per company and app (Intuit: 10).
    pub concurrency_limit: u32,
    /// Latency added to every API call.
    pub latency_ms: u64,
    /// Share of API calls answered 503 before anything happens.
    pub error_rate: f64,
    /// Share of API writes that are applied and then answered 503 (a retry with the same
    /// `requestid` gets the first answer).
    pub write_error_rate: f64,
    /// Share of API calls whose connection is dropped without an answer.
    pub drop_rate: f64,
    /// Every refresh (and code exchange) answers `invalid_grant` while set.
    pub force_invalid_grant: bool,
    /// Where to POST Intuit-style webhook notifications after each change (none when absent).
    pub webhook_url: Option<String>,
    /// The app's verifier token, which signs webhook bodies (`intuit-signature`).
    pub webhook_verifier_token: String,
    /// Approve authorization requests at once as this user.
    pub auto_consent: Option<AutoConsent>,
    /// Seed of the demo data and of the fault dice.
    pub seed: u64,
    /// The date the demo books are built around (`YYYY-MM-DD`); today when absent.
    pub demo_today: Option<chrono::NaiveDate>,
    /// How many demo companies: the first two are Craig's Design and Landscaping and Harbor
    /// Bicycle Works; each one after is generated, with its own admin (`owner@…`) and a
    /// bookkeeper (`books@…`), and books seeded from `seed` (docs/simulator.md).
    pub companies: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            access_token_lifetime_s: 3600,
            refresh_token_lifetime_s: 100 * 24 * 3600,
            refresh_token_max_lifetime_s: 5 * 365 * 24 * 3600,
            rotation_interval_s: 24 * 3600,
            refresh_grace_s: 0,
            change_admin: true,
            rate_limit_per_minute: 500,
            report_rate_limit_per_minute: 200,
            batch_rate_limit_per_minute: 120,
            concurrency_limit: 10,
            latency_ms: 0,
            error_rate: 0.0,
            write_error_rate: 0.0,
            drop_rate: 0.0,
            force_invalid_grant: false,
            auto_consent: None,
            webhook_url: None,
            webhook_verifier_token: "qbo-sim-verifier-token".into(),
            seed: 42,
            demo_today: None,
            companies: crate::books::seed::DEFAULT_COMPANIES,
        }
    }
}

impl SimConfig {
    /// Reads a TOML file, or JSON when the name ends in `.json`.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        if path.extension().is_some_and(|ext| ext == "json") {
            serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("{} is not a valid simulator config: {e}", path.display())
            })
        } else {
            toml::from_str(&text).map_err(|e| {
                anyhow::anyhow!("{} is not a valid simulator config: {e}", path.display())
            })
        }
    }

    /// Applies a `POST /_sim/config` body: a JSON object holding any of the fields above.
    /// Fails, changing nothing, on an unknown key or a value of the wrong type.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(changes) = patch else {
            return Err("the body must be a JSON object".into());
        };
        let serde_json::Value::Object(mut merged) =
            serde_json::to_value(self).map_err(|e| e.to_string())?
        else {
            return Err("the configuration is not an object".into());
        };
        for (key, value) in changes {
            if !merged.contains_key(key) {
                return Err(format!("unknown configuration key `{key}`"));
            }
            merged.insert(key.clone(), value.clone());
        }
        let next: Self =
            serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| e.to_string())?;
        next.check().map_err(|e| e.to_string())?;
        Ok(next)
    }

    /// Refuses values out of range: a share outside 0..=1, a number of companies outside
    /// 1..=`MAX_COMPANIES`.
    pub fn check(&self) -> anyhow::Result<()> {
        let next = self;
        if !(1..=crate::books::seed::MAX_COMPANIES).contains(&next.companies) {
            anyhow::bail!(
                "`companies` must be between 1 and {}",
                crate::books::seed::MAX_COMPANIES
            );
        }
        for (name, rate) in [
            ("error_rate", next.error_rate),
            ("write_error_rate", next.write_error_rate),
            ("drop_rate", next.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                anyhow::bail!("`{name}` must be between 0 and 1");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_intuits_numbers() {
        let config = SimConfig::default();
        assert_eq!(config.access_token_lifetime_s, 3600);
        assert_eq!(config.refresh_token_lifetime_s, 8_640_000);
        assert_eq!(config.rotation_interval_s, 86_400);
        assert_eq!(config.refresh_grace_s, 0);
        assert_eq!(config.rate_limit_per_minute, 500);
        assert_eq!(config.report_rate_limit_per_minute, 200);
        assert_eq!(config.concurrency_limit, 10);
    }

    #[test]
    fn patch_rejects_unknown_keys_and_bad_rates() {
        let config = SimConfig::default();
        assert!(
            config
                .patched(&serde_json::json!({"acces_token_lifetime_s": 5}))
                .is_err()
        );
        assert!(
            config
                .patched(&serde_json::json!({"error_rate": 1.5}))
                .is_err()
        );
        assert!(config.patched(&serde_json::json!([1])).is_err());
        let next = config
            .patched(&serde_json::json!({"access_token_lifetime_s": 5, "auto_consent": {"email": "a@b.c"}}))
            .expect("valid patch");
        assert_eq!(next.access_token_lifetime_s, 5);
        assert_eq!(next.auto_consent.map(|a| a.email), Some("a@b.c".to_owned()));
    }

    #[test]
    fn auto_consent_parses_email_and_realm() {
        let parsed = AutoConsent::parse("ann@example.com:9130").expect("valid");
        assert_eq!(parsed.realm_id.as_deref(), Some("9130"));
        assert!(AutoConsent::parse("nobody").is_err());
        let toml_config: SimConfig =
            toml::from_str("access_token_lifetime_s = 60\nseed = 7").expect("toml");
        assert_eq!(toml_config.access_token_lifetime_s, 60);
        assert_eq!(toml_config.seed, 7);
    }
}
