//! The QuickBooks entity types the simulator knows, and what QuickBooks allows for each:
//! name lists can only be deactivated, some transactions can be voided, some fields are
//! required even in a sparse update. Built once from the schema (`schema.toml`).

use super::schema::{Prop, SCHEMA};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// How QuickBooks treats an entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Customer, Vendor, Item…: never deleted, only `Active=false`.
    NameList,
    /// Invoice, Bill…: deleted for real.
    Transaction,
}

/// One entity type.
#[derive(Debug)]
pub struct EntityType {
    /// QuickBooks' name, case-sensitive in queries (`Customer`).
    pub name: &'static str,
    pub family: Family,
    /// Whether `operation=void` (or Intuit's `include=void` update) is allowed.
    pub voidable: bool,
    /// Fields a create must carry (alternatives separated by `|`).
    pub required: &'static [String],
    /// Fields even a sparse update must carry.
    pub sparse_required: &'static [String],
    /// Whether lines carry a sales amount (`SalesItemLineDetail`) and a `SubTotalLine`.
    pub sales_document: bool,
    /// Whether a second document of this type may not reuse a `DocNumber` (6140).
    pub unique_doc_number: bool,
    /// Every property a write may carry, and how queries may use it.
    pub properties: &'static BTreeMap<String, Prop>,
    /// The entity's entry in the schema.
    pub schema: &'static super::schema::EntitySchema,
}

impl PartialEq for EntityType {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for EntityType {}

/// The order the demo books create them in (names before the transactions using them).
const ORDER: &[&str] = &[
    "Account",
    "Class",
    "Department",
    "Term",
    "PaymentMethod",
    "TaxCode",
    "Customer",
    "Vendor",
    "Employee",
    "Item",
    "Invoice",
    "Estimate",
    "SalesReceipt",
    "CreditMemo",
    "RefundReceipt",
    "Payment",
    "Bill",
    "BillPayment",
    "Purchase",
    "PurchaseOrder",
    "VendorCredit",
    "JournalEntry",
    "Deposit",
    "Transfer",
    "TimeActivity",
    "Attachable",
];

/// Every entity type, in the order the demo books create them.
pub static ENTITY_TYPES: LazyLock<Vec<EntityType>> = LazyLock::new(|| {
    let mut types: Vec<EntityType> = SCHEMA
        .entities
        .iter()
        .map(|schema| EntityType {
            name: schema.name.as_str(),
            family: if schema.transaction {
                Family::Transaction
            } else {
                Family::NameList
            },
            voidable: schema.voidable,
            required: &schema.required,
            sparse_required: &schema.sparse_required,
            sales_document: schema.sales_document,
            unique_doc_number: schema.duplicate_doc_number,
            properties: &schema.properties,
            schema,
        })
        .collect();
    types.sort_by_key(|t| {
        ORDER
            .iter()
            .position(|n| *n == t.name)
            .unwrap_or(ORDER.len())
    });
    types
});

/// Finds a type by its exact QuickBooks name (`Customer`), as queries must spell it.
pub fn by_name(name: &str) -> Option<&'static EntityType> {
    ENTITY_TYPES.iter().find(|t| t.name == name)
}

/// Finds a type by the lower-case path segment of the REST API (`/customer/{id}`).
pub fn by_path(segment: &str) -> Option<&'static EntityType> {
    ENTITY_TYPES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_follow_intuits_spelling() {
        assert_eq!(
            by_name("Customer").map(|t| t.family),
            Some(Family::NameList)
        );
        assert!(by_name("customer").is_none());
        assert_eq!(
            by_path("journalentry").map(|t| t.name),
            Some("JournalEntry")
        );
        assert!(by_path("invoice").is_some_and(|t| t.voidable && t.sales_document));
        assert_eq!(
            by_path("bill").map(|t| t.sparse_required.to_vec()),
            Some(vec!["VendorRef".to_owned()])
        );
        assert_eq!(ENTITY_TYPES.len(), ORDER.len());
        assert_eq!(ENTITY_TYPES[0].name, "Account");
        assert_eq!(ENTITY_TYPES[ORDER.len() - 1].name, "Attachable");
    }
}
