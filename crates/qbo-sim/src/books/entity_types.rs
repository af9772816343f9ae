//! The QuickBooks entity types the simulator knows, and what QuickBooks allows for each:
//! name lists can only be deactivated, some transactions can be voided, some fields are
//! required even in a sparse update.

/// How QuickBooks treats an entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Customer, Vendor, Item…: never deleted, only `Active=false`.
    NameList,
    /// Invoice, Bill…: deleted for real.
    Transaction,
}

/// One entity type.
#[derive(Debug, PartialEq, Eq)]
pub struct EntityType {
    /// QuickBooks' name, case-sensitive in queries (`Customer`).
    pub name: &'static str,
    pub family: Family,
    /// Whether `operation=void` (or Intuit's `include=void` update) is allowed.
    pub voidable: bool,
    /// Fields a create must carry (alternatives separated by `|`).
    pub required: &'static [&'static str],
    /// Fields even a sparse update must carry.
    pub sparse_required: &'static [&'static str],
    /// Whether lines carry a sales amount (`SalesItemLineDetail`) and a `SubTotalLine`.
    pub sales_document: bool,
}

const fn names(name: &'static str, required: &'static [&'static str]) -> EntityType {
    EntityType {
        name,
        family: Family::NameList,
        voidable: false,
        required,
        sparse_required: &[],
        sales_document: false,
    }
}

const fn txn(
    name: &'static str,
    voidable: bool,
    required: &'static [&'static str],
    sales_document: bool,
) -> EntityType {
    EntityType {
        name,
        family: Family::Transaction,
        voidable,
        required,
        sparse_required: &[],
        sales_document,
    }
}

/// Every entity type, in the order the demo books create them.
pub static ENTITY_TYPES: &[EntityType] = &[
    names("Account", &["Name", "AccountType|AccountSubType"]),
    names("Class", &["Name"]),
    names("Department", &["Name"]),
    names("Term", &["Name"]),
    names("PaymentMethod", &["Name"]),
    names("TaxCode", &["Name"]),
    names(
        "Customer",
        &["DisplayName|GivenName|FamilyName|CompanyName|Title|MiddleName|Suffix"],
    ),
    names(
        "Vendor",
        &["DisplayName|GivenName|FamilyName|CompanyName|Title|MiddleName|Suffix"],
    ),
    names("Employee", &["GivenName|FamilyName|DisplayName"]),
    names("Item", &["Name"]),
    txn("Invoice", true, &["CustomerRef", "Line"], true),
    txn("Estimate", false, &["CustomerRef", "Line"], true),
    txn("SalesReceipt", true, &["Line"], true),
    txn("CreditMemo", false, &["CustomerRef", "Line"], true),
    txn("RefundReceipt", false, &["Line"], true),
    txn("Payment", true, &["CustomerRef", "TotalAmt"], false),
    EntityType {
        name: "Bill",
        family: Family::Transaction,
        voidable: false,
        required: &["VendorRef", "Line"],
        sparse_required: &["VendorRef"],
        sales_document: false,
    },
    txn(
        "BillPayment",
        true,
        &["VendorRef", "PayType", "TotalAmt"],
        false,
    ),
    EntityType {
        name: "Purchase",
        family: Family::Transaction,
        voidable: false,
        required: &["PaymentType", "AccountRef", "Line"],
        sparse_required: &["PaymentType"],
        sales_document: false,
    },
    txn("PurchaseOrder", false, &["VendorRef", "Line"], false),
    txn("VendorCredit", false, &["VendorRef", "Line"], false),
    txn("JournalEntry", false, &["Line"], false),
    txn("Deposit", false, &["DepositToAccountRef", "Line"], false),
    txn(
        "Transfer",
        false,
        &["FromAccountRef", "ToAccountRef", "Amount"],
        false,
    ),
    txn("TimeActivity", false, &["NameOf"], false),
];

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
            by_path("bill").map(|t| t.sparse_required),
            Some(&["VendorRef"][..])
        );
    }
}
