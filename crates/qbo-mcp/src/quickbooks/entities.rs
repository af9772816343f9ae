//! What QuickBooks allows for each entity type, as far as the gateway must know it to be safe:
//! name lists are never deleted, only deactivated; some transactions can be voided; a few need
//! fields even in a sparse update; the company's settings are only ever updated. Names are
//! QuickBooks' own and case-sensitive.

/// How QuickBooks treats a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Customer, Vendor, Item…: only `Active=false`.
    NameList,
    /// Invoice, Bill…: deleted for real; some can be voided.
    Transaction { voidable: bool },
    /// The company's settings, one of each per company (CompanyInfo, Preferences): updated
    /// only (by admins, with `update_company_settings`), never created or deleted.
    Settings,
    /// TaxRate, TaxAgency: read-only here.
    ReadOnly,
}

/// One entity type the tools accept.
#[derive(Debug)]
pub struct EntityType {
    pub name: &'static str,
    pub kind: Kind,
    /// Fields a sparse update must still carry (else QuickBooks answers 2020).
    pub sparse_required: &'static [&'static str],
}

const fn list(name: &'static str) -> EntityType {
    EntityType {
        name,
        kind: Kind::NameList,
        sparse_required: &[],
    }
}

const fn txn(name: &'static str, voidable: bool) -> EntityType {
    EntityType {
        name,
        kind: Kind::Transaction { voidable },
        sparse_required: &[],
    }
}

const fn settings(name: &'static str) -> EntityType {
    EntityType {
        name,
        kind: Kind::Settings,
        sparse_required: &[],
    }
}

const fn read_only(name: &'static str) -> EntityType {
    EntityType {
        name,
        kind: Kind::ReadOnly,
        sparse_required: &[],
    }
}

pub static TYPES: &[EntityType] = &[
    list("Account"),
    list("Class"),
    list("Customer"),
    list("Department"),
    list("Employee"),
    list("Item"),
    list("PaymentMethod"),
    list("TaxCode"),
    list("Term"),
    list("Vendor"),
    txn("Invoice", true),
    txn("Payment", true),
    txn("SalesReceipt", true),
    txn("BillPayment", true),
    txn("Estimate", false),
    txn("CreditMemo", false),
    txn("RefundReceipt", false),
    EntityType {
        name: "Bill",
        kind: Kind::Transaction { voidable: false },
        sparse_required: &["VendorRef"],
    },
    EntityType {
        name: "Purchase",
        kind: Kind::Transaction { voidable: false },
        sparse_required: &["PaymentType"],
    },
    txn("PurchaseOrder", false),
    txn("VendorCredit", false),
    txn("JournalEntry", false),
    txn("Deposit", false),
    txn("Transfer", false),
    txn("TimeActivity", false),
    txn("Attachable", false),
    settings("CompanyInfo"),
    settings("Preferences"),
    read_only("TaxRate"),
    read_only("TaxAgency"),
];

/// The type with exactly this name (`Customer`), or `None`.
pub fn by_name(name: &str) -> Option<&'static EntityType> {
    TYPES.iter().find(|t| t.name == name)
}

/// A helpful error for a name that is not a type: suggests the right spelling if only the
/// case is off.
pub fn unknown(name: &str) -> String {
    match TYPES.iter().find(|t| t.name.eq_ignore_ascii_case(name)) {
        Some(t) => format!(
            "`{name}` is not a QuickBooks entity name; names are case-sensitive: use `{}`.",
            t.name
        ),
        None => format!(
            "`{name}` is not a QuickBooks entity this server knows; use one of: {}.",
            TYPES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

impl EntityType {
    /// The REST path segment (`customer`).
    pub fn path(&self) -> String {
        self.name.to_ascii_lowercase()
    }
}
