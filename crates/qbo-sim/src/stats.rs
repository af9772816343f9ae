//! Counters that tests and benchmarks read through `GET /_sim/stats`: what Intuit would have
//! seen, overall and per company. Counting must stay cheap (atomics), since every API call
//! passes here.

use parking_lot::RwLock;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One thing the simulator counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    AuthorizeRequests,
    Consents,
    CodeExchanges,
    RefreshRequests,
    RefreshRotations,
    InvalidGrant,
    AdminChanges,
    Revocations,
    ApiRequests,
    Reads,
    Writes,
    Queries,
    Reports,
    CdcRequests,
    Unauthorized,
    Throttled,
    FaultsInjected,
    ConnectionsDropped,
    IdempotentReplays,
    StaleObject,
    InvoicesSent,
    Batches,
    WebhooksSent,
    WebhookFailures,
}

impl Counter {
    const ALL: [Counter; 24] = [
        Counter::AuthorizeRequests,
        Counter::Consents,
        Counter::CodeExchanges,
        Counter::RefreshRequests,
        Counter::RefreshRotations,
        Counter::InvalidGrant,
        Counter::AdminChanges,
        Counter::Revocations,
        Counter::ApiRequests,
        Counter::Reads,
        Counter::Writes,
        Counter::Queries,
        Counter::Reports,
        Counter::CdcRequests,
        Counter::Unauthorized,
        Counter::Throttled,
        Counter::FaultsInjected,
        Counter::ConnectionsDropped,
        Counter::IdempotentReplays,
        Counter::StaleObject,
        Counter::InvoicesSent,
        Counter::Batches,
        Counter::WebhooksSent,
        Counter::WebhookFailures,
    ];

    /// The key under which `/_sim/stats` shows this counter.
    pub fn name(self) -> &'static str {
        match self {
            Counter::AuthorizeRequests => "authorize_requests",
            Counter::Consents => "consents",
            Counter::CodeExchanges => "code_exchanges",
            Counter::RefreshRequests => "refresh_requests",
            Counter::RefreshRotations => "refresh_rotations",
            Counter::InvalidGrant => "invalid_grant",
            Counter::AdminChanges => "admin_changes",
            Counter::Revocations => "revocations",
            Counter::ApiRequests => "api_requests",
            Counter::Reads => "reads",
            Counter::Writes => "writes",
            Counter::Queries => "queries",
            Counter::Reports => "reports",
            Counter::CdcRequests => "cdc_requests",
            Counter::Unauthorized => "unauthorized",
            Counter::Throttled => "throttled",
            Counter::FaultsInjected => "faults_injected",
            Counter::ConnectionsDropped => "connections_dropped",
            Counter::IdempotentReplays => "idempotent_replays",
            Counter::StaleObject => "stale_object",
            Counter::InvoicesSent => "invoices_sent",
            Counter::Batches => "batches",
            Counter::WebhooksSent => "webhooks_sent",
            Counter::WebhookFailures => "webhook_failures",
        }
    }
}

/// The counters of one scope (everything, or one company).
#[derive(Debug, Default)]
pub struct Counters {
    values: [AtomicU64; Counter::ALL.len()],
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Counters {
    fn add(&self, counter: Counter) {
        self.values[counter as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Current value of one counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize].load(Ordering::Relaxed)
    }

    fn enter(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_in_flight.fetch_max(now, Ordering::AcqRel);
    }

    fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    fn to_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for counter in Counter::ALL {
            out.insert(counter.name().into(), self.get(counter).into());
        }
        out.insert(
            "in_flight".into(),
            self.in_flight.load(Ordering::Acquire).into(),
        );
        out.insert(
            "max_in_flight".into(),
            self.max_in_flight.load(Ordering::Acquire).into(),
        );
        out
    }

    fn clear(&self) {
        for value in &self.values {
            value.store(0, Ordering::Relaxed);
        }
        self.max_in_flight
            .store(self.in_flight.load(Ordering::Acquire), Ordering::Release);
    }
}

/// All counters: the overall ones and one set per company.
#[derive(Debug, Default)]
pub struct Stats {
    overall: Arc<Counters>,
    realms: RwLock<BTreeMap<String, Arc<Counters>>>,
}

impl Stats {
    fn realm(&self, realm_id: &str) -> Arc<Counters> {
        if let Some(found) = self.realms.read().get(realm_id) {
            return found.clone();
        }
        self.realms
            .write()
            .entry(realm_id.to_owned())
            .or_default()
            .clone()
    }

    /// Counts one event, overall and for the company when it is known.
    pub fn count(&self, counter: Counter, realm_id: Option<&str>) {
        self.overall.add(counter);
        if let Some(realm_id) = realm_id {
            self.realm(realm_id).add(counter);
        }
    }

    /// Counts one event for a company only (its overall count was taken earlier).
    pub fn count_realm_only(&self, counter: Counter, realm_id: &str) {
        self.realm(realm_id).add(counter);
    }

    /// Value of one overall counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.overall.get(counter)
    }

    /// Value of one counter for one company.
    pub fn get_for(&self, counter: Counter, realm_id: &str) -> u64 {
        self.realms
            .read()
            .get(realm_id)
            .map_or(0, |c| c.get(counter))
    }

    /// Marks an API request as in flight until the returned guard is dropped.
    pub fn in_flight(&self, realm_id: &str) -> InFlight {
        let realm = self.realm(realm_id);
        self.overall.enter();
        realm.enter();
        InFlight {
            overall: self.overall.clone(),
            realm,
        }
    }

    /// The `/_sim/stats` document.
    pub fn to_json(&self) -> Value {
        let mut out = self.overall.to_json();
        let realms: Map<String, Value> = self
            .realms
            .read()
            .iter()
            .map(|(realm, counters)| (realm.clone(), Value::Object(counters.to_json())))
            .collect();
        out.insert("realms".into(), Value::Object(realms));
        Value::Object(out)
    }

    /// Sets every counter back to zero (requests still in flight stay counted as such).
    pub fn clear(&self) {
        self.overall.clear();
        for counters in self.realms.read().values() {
            counters.clear();
        }
    }
}

/// Held while an API request runs; see [`Stats::in_flight`].
#[derive(Debug)]
pub struct InFlight {
    overall: Arc<Counters>,
    realm: Arc<Counters>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.overall.leave();
        self.realm.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_overall_and_per_realm_and_tracks_peak_in_flight() {
        let stats = Stats::default();
        stats.count(Counter::ApiRequests, Some("1"));
        stats.count(Counter::ApiRequests, Some("2"));
        stats.count(Counter::AuthorizeRequests, None);
        {
            let _a = stats.in_flight("1");
            let _b = stats.in_flight("1");
        }
        let json = stats.to_json();
        assert_eq!(json["api_requests"], 2);
        assert_eq!(json["authorize_requests"], 1);
        assert_eq!(json["max_in_flight"], 2);
        assert_eq!(json["in_flight"], 0);
        assert_eq!(json["realms"]["1"]["api_requests"], 1);
        assert_eq!(json["realms"]["1"]["max_in_flight"], 2);
        assert_eq!(json["realms"]["2"]["max_in_flight"], 0);
        stats.clear();
        assert_eq!(stats.to_json()["api_requests"], 0);
    }
}
