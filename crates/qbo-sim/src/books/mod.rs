//! The simulated companies: who may sign in to each, and each company's books (every entity
//! as QuickBooks would return it, plus what change data capture and `requestid` idempotency
//! need). Everything lives in memory behind one lock per company.

mod attachables;
pub mod entity_types;
pub mod fields;
pub mod ledger;
pub mod schema;
pub mod seed;
mod settings;
mod writes;

pub use attachables::Upload;
pub use writes::WriteOptions;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use entity_types::EntityType;
use parking_lot::RwLock;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A person with a QuickBooks login in a simulated company.
#[derive(Debug, Clone, Serialize)]
pub struct SimUser {
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub role: UserRole,
    /// The stable OpenID subject (`sub`) of this person.
    #[serde(skip)]
    pub sub: String,
}

/// What a user may do in QuickBooks; only admins may connect apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Admin,
    User,
}

/// One QuickBooks company (a realm).
#[derive(Debug)]
pub struct Company {
    pub realm_id: String,
    pub name: String,
    /// Who may sign in; roles change through `/_sim/companies/{realm}/users`.
    pub users: RwLock<Vec<SimUser>>,
    pub books: RwLock<Books>,
}

impl Company {
    /// The user with this email, if they belong to the company.
    pub fn user(&self, email: &str) -> Option<SimUser> {
        self.users
            .read()
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .cloned()
    }

    /// Whether this email belongs to a company admin (checked on every API call).
    pub fn is_admin(&self, email: &str) -> bool {
        self.users
            .read()
            .iter()
            .any(|u| u.role == UserRole::Admin && u.email.eq_ignore_ascii_case(email))
    }

    /// Everyone who may sign in.
    pub fn user_list(&self) -> Vec<SimUser> {
        self.users.read().clone()
    }

    /// Adds a user, or changes the role of an existing one.
    pub fn set_user(&self, email: &str, role: UserRole) -> SimUser {
        let mut users = self.users.write();
        if let Some(found) = users
            .iter_mut()
            .find(|u| u.email.eq_ignore_ascii_case(email))
        {
            found.role = role;
            return found.clone();
        }
        let local = email.split('@').next().unwrap_or(email);
        let added = SimUser {
            email: email.to_lowercase(),
            given_name: local.to_owned(),
            family_name: String::new(),
            role,
            sub: format!("added-{}-{}", self.realm_id, users.len() + 1),
        };
        users.push(added.clone());
        added
    }
}

/// A deleted transaction, remembered for change data capture.
#[derive(Debug, Clone)]
pub struct Tombstone {
    pub entity: &'static str,
    pub id: u64,
    pub at: DateTime<Utc>,
}

/// The first answer to a write that carried a `requestid`.
#[derive(Debug, Clone)]
pub struct StoredReply {
    pub status: u16,
    pub body: Bytes,
}

/// Everything in one company's books.
#[derive(Debug, Default)]
pub struct Books {
    entities: HashMap<&'static str, BTreeMap<u64, Value>>,
    next_ids: HashMap<&'static str, u64>,
    next_doc_number: u64,
    pub tombstones: Vec<Tombstone>,
    /// Voided transactions (`(entity, id)`): QuickBooks refuses to void or change them again.
    pub voided: HashSet<(&'static str, u64)>,
    /// The bytes of uploaded files, by Attachable id (in memory, like everything else).
    pub files: HashMap<u64, Bytes>,
    /// Answers by `requestid`, so a retried write is not applied twice.
    pub replies: HashMap<String, StoredReply>,
    pub company_info: Value,
    pub preferences: Value,
    /// While the demo books are built, balances are recomputed once at the end.
    pub(crate) bulk_loading: bool,
}

impl Books {
    /// One entity by id.
    pub fn get(&self, entity: &EntityType, id: u64) -> Option<&Value> {
        self.entities.get(entity.name)?.get(&id)
    }

    /// One entity by its `Id` text.
    pub fn get_by_text(&self, entity: &EntityType, id: &str) -> Option<&Value> {
        self.get(entity, id.parse().ok()?)
    }

    /// Every entity of a type, by ascending id.
    pub fn all<'a>(&'a self, entity: &EntityType) -> impl Iterator<Item = &'a Value> + 'a {
        self.entities
            .get(entity.name)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Every entity of a type by name (`"Invoice"`); nothing for an unknown name.
    pub fn all_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Value> + 'a {
        self.entities.get(name).into_iter().flat_map(|m| m.values())
    }

    /// How many entities of a type exist.
    pub fn count(&self, entity: &EntityType) -> usize {
        self.entities.get(entity.name).map_or(0, BTreeMap::len)
    }

    fn allocate_id(&mut self, entity: &'static EntityType) -> u64 {
        let next = self.next_ids.entry(entity.name).or_insert(1);
        let id = *next;
        *next += 1;
        id
    }

    fn allocate_doc_number(&mut self) -> String {
        if self.next_doc_number == 0 {
            self.next_doc_number = 1001;
        }
        let number = self.next_doc_number;
        self.next_doc_number += 1;
        number.to_string()
    }

    fn store(&mut self, entity: &'static EntityType, id: u64, value: Value) {
        self.entities
            .entry(entity.name)
            .or_default()
            .insert(id, value);
    }

    fn remove(&mut self, entity: &'static EntityType, id: u64) -> Option<Value> {
        self.entities.get_mut(entity.name)?.remove(&id)
    }
}
