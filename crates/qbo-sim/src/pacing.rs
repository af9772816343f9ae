//! Intuit's throttle, per company and app: a budget of requests per minute (separate,
//! smaller ones for reports and batches) and a cap on requests in flight. Windows follow the simulator's
//! clock, so a test can move a minute forward instead of waiting one.

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Budget {
    window_start: Option<DateTime<Utc>>,
    requests: u32,
    reports: u32,
    batches: u32,
    in_flight: u32,
}

/// Which extra budget a request also draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Report,
    Batch,
}

/// The budgets of one company, by app (client id).
type AppBudgets = HashMap<String, Arc<Mutex<Budget>>>;

/// The budgets of every (company, app): Intuit counts per company and app.
#[derive(Debug, Default)]
pub struct Pacing {
    budgets: Mutex<HashMap<String, AppBudgets>>,
}

/// The limits in force for one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_minute: u32,
    pub reports_per_minute: u32,
    pub batches_per_minute: u32,
    pub concurrency: u32,
}

/// Held while an admitted request runs; frees its in-flight place when dropped.
#[derive(Debug)]
pub struct Admitted {
    budget: Arc<Mutex<Budget>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut budget = self.budget.lock();
        budget.in_flight = budget.in_flight.saturating_sub(1);
    }
}

impl Pacing {
    /// Admits a request or refuses it (Intuit answers 429).
    pub fn admit(
        &self,
        realm_id: &str,
        client_id: &str,
        kind: Kind,
        limits: Limits,
        now: DateTime<Utc>,
    ) -> Option<Admitted> {
        let budget = {
            let mut budgets = self.budgets.lock();
            let found = budgets
                .get(realm_id)
                .and_then(|apps| apps.get(client_id))
                .cloned();
            match found {
                Some(found) => found,
                None => budgets
                    .entry(realm_id.to_owned())
                    .or_default()
                    .entry(client_id.to_owned())
                    .or_default()
                    .clone(),
            }
        };
        {
            let mut state = budget.lock();
            if state
                .window_start
                .is_none_or(|start| now - start >= chrono::Duration::seconds(60) || now < start)
            {
                state.window_start = Some(now);
                state.requests = 0;
                state.reports = 0;
                state.batches = 0;
            }
            let extra_spent = match kind {
                Kind::Plain => false,
                Kind::Report => state.reports >= limits.reports_per_minute,
                Kind::Batch => state.batches >= limits.batches_per_minute,
            };
            if state.requests >= limits.per_minute
                || extra_spent
                || state.in_flight >= limits.concurrency
            {
                return None;
            }
            state.requests += 1;
            match kind {
                Kind::Plain => {}
                Kind::Report => state.reports += 1,
                Kind::Batch => state.batches += 1,
            }
            state.in_flight += 1;
        }
        Some(Admitted { budget })
    }

    /// Forgets every window (requests in flight stay counted).
    pub fn clear(&self) {
        for budget in self.budgets.lock().values().flat_map(HashMap::values) {
            budget.lock().window_start = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_budget_report_budget_and_concurrency() {
        let pacing = Pacing::default();
        let limits = Limits {
            per_minute: 3,
            reports_per_minute: 1,
            batches_per_minute: 1,
            concurrency: 2,
        };
        let now = Utc::now();
        let a = pacing
            .admit("r", "app", Kind::Report, limits, now)
            .expect("first");
        assert!(
            pacing
                .admit("r", "app", Kind::Report, limits, now)
                .is_none(),
            "report budget"
        );
        let b = pacing
            .admit("r", "app", Kind::Plain, limits, now)
            .expect("second");
        assert!(
            pacing.admit("r", "app", Kind::Plain, limits, now).is_none(),
            "two in flight"
        );
        drop((a, b));
        let _c = pacing
            .admit("r", "app", Kind::Plain, limits, now)
            .expect("third");
        assert!(
            pacing.admit("r", "app", Kind::Plain, limits, now).is_none(),
            "minute budget"
        );
        assert!(
            pacing
                .admit("r", "other-app", Kind::Plain, limits, now)
                .is_some(),
            "per app"
        );
        assert!(
            pacing
                .admit(
                    "r",
                    "app",
                    Kind::Plain,
                    limits,
                    now + chrono::Duration::seconds(60)
                )
                .is_some()
        );
        drop(
            pacing
                .admit("r", "batch-app", Kind::Batch, limits, now)
                .expect("one batch"),
        );
        assert!(
            pacing
                .admit("r", "batch-app", Kind::Batch, limits, now)
                .is_none(),
            "batch budget"
        );
        assert!(
            pacing
                .admit("r", "batch-app", Kind::Plain, limits, now)
                .is_some(),
            "other calls go on"
        );
    }
}
