//! Single-flight of identical reads: while a read of a company is in flight, the same read
//! (same path and parameters, hence the same query, entity and id, or report with the same
//! parameters) asked by anyone else joins it instead of sending a request of its own, and
//! every caller gets the one answer, Intuit's `intuit_tid` included.
//!
//! Only reads come here (the read tools in `operations`), never writes, nor the read a write
//! plans with (its SyncToken must be read after the write was asked for). A flight belongs to
//! one company: the realm id is part of its key. A failure is shared only with the callers
//! that joined that flight; the next caller after it landed starts a new one. Who may read
//! and what is audited stays with each caller: only the upstream request is shared.
//!
//! The first caller (the leader) sends the request itself; should it go away before the
//! answer (its client disconnected), the callers that joined start over, one of them becoming
//! the new leader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::Shared;
use tokio::sync::oneshot;

use super::QboError;
use super::api::{ApiRequest, ApiResponse};

/// What a flight lands with, shared by everyone on it.
type Landing = Arc<Result<ApiResponse, QboError>>;
type Joined = Shared<oneshot::Receiver<Landing>>;

/// The reads in flight, by company and request.
#[derive(Debug, Default)]
pub struct Flights {
    in_flight: Mutex<HashMap<String, (u64, Joined)>>,
    next: std::sync::atomic::AtomicU64,
}

/// What identifies a read: the company, the path and the parameters in order.
fn key(realm_id: &str, request: &ApiRequest) -> String {
    let mut key = String::with_capacity(realm_id.len() + request.path.len() + 32);
    key.push_str(realm_id);
    key.push('\n');
    key.push_str(&request.path);
    for (k, v) in &request.query {
        key.push('\n');
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    key
}

/// A copy of a shared error for one more caller.
fn copy(e: &QboError) -> QboError {
    match e {
        QboError::InvalidArgument { message } => QboError::InvalidArgument {
            message: message.clone(),
        },
        QboError::UnknownCompany { company } => QboError::UnknownCompany {
            company: company.clone(),
        },
        QboError::NotConnected { realm_id } => QboError::NotConnected {
            realm_id: realm_id.clone(),
        },
        QboError::NeedsReconnect { realm_id } => QboError::NeedsReconnect {
            realm_id: realm_id.clone(),
        },
        QboError::Busy { detail } => QboError::Busy {
            detail: detail.clone(),
        },
        QboError::Unavailable { detail } => QboError::Unavailable {
            detail: detail.clone(),
        },
        QboError::Fault { fault, intuit_tid } => QboError::Fault {
            fault: fault.clone(),
            intuit_tid: intuit_tid.clone(),
        },
        QboError::Internal(e) => QboError::Internal(anyhow::anyhow!("{e:#}")),
    }
}

fn copied(landing: &Landing) -> Result<ApiResponse, QboError> {
    match &**landing {
        Ok(r) => Ok(r.clone()),
        Err(e) => Err(copy(e)),
    }
}

/// Takes the flight out of the map when its leader ends, however it ends (a leader dropped
/// mid-flight leaves no entry behind for later callers to wait on).
struct Leading<'a> {
    flights: &'a Flights,
    key: String,
    id: u64,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut map = self
            .flights
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.key);
        }
    }
}

impl Flights {
    /// `read` sent once for every identical `request` of `realm_id` asked while it is in
    /// flight; each caller gets the answer (or the failure) of the flight it joined.
    pub async fn read<F, Fut>(
        &self,
        realm_id: &str,
        request: &ApiRequest,
        read: F,
    ) -> Result<ApiResponse, QboError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ApiResponse, QboError>>,
    {
        let key = key(realm_id, request);
        loop {
            let joined = {
                let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                match map.get(&key) {
                    Some((_, joined)) => Err(joined.clone()),
                    None => {
                        let (sender, receiver) = oneshot::channel();
                        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        map.insert(key.clone(), (id, receiver.shared()));
                        Ok((sender, id))
                    }
                }
            };
            let (sender, id) = match joined {
                Ok(leader) => leader,
                Err(joined) => {
                    metrics::counter!("quickbooks_reads_joined_total").increment(1);
                    match joined.await {
                        Ok(landing) => return copied(&landing),
                        // The leader went away before the answer: start over.
                        Err(_) => continue,
                    }
                }
            };
            let leading = Leading {
                flights: self,
                key,
                id,
            };
            let landed = read().await;
            // Out of the map first: whoever asks from now on starts a new flight. With
            // nobody on board the receiver went with the entry and the answer comes back.
            drop(leading);
            let landing = Arc::new(landed);
            return match sender.send(landing.clone()) {
                Ok(()) => copied(&landing),
                Err(_) => Arc::try_unwrap(landing).unwrap_or_else(|shared| copied(&shared)),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_tell_companies_and_parameters_apart() {
        let a = ApiRequest::get("query").param("query", "SELECT * FROM Customer");
        let b = ApiRequest::get("query").param("query", "SELECT * FROM Item");
        assert_ne!(key("1", &a), key("2", &a));
        assert_ne!(key("1", &a), key("1", &b));
        assert_eq!(key("1", &a), key("1", &a.clone()));
    }

    #[tokio::test]
    async fn a_lone_read_gets_its_own_answer_back() {
        let flights = Flights::default();
        let request = ApiRequest::get("customer/1");
        let answer = flights
            .read("1", &request, || async {
                Ok(ApiResponse {
                    body: json!({"Customer": {"Id": "1"}}),
                    intuit_tid: Some("tid".into()),
                    request_id: None,
                    attempts: 1,
                    raw: Default::default(),
                })
            })
            .await
            .unwrap();
        assert_eq!(answer.intuit_tid.as_deref(), Some("tid"));
        assert!(flights.in_flight.lock().unwrap().is_empty());
    }
}
