//! The demo companies: realistic, deterministic books (a chart of accounts, customers,
//! vendors, employees, items, and a year of invoices, payments, bills, purchases, deposits,
//! journal entries…) built from a seed and a "today". The same seed and day give the same
//! books, entity for entity.

use super::entity_types::by_name;
use super::fields;
use super::{Books, Company, SimUser, UserRole};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use parking_lot::RwLock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// What makes one demo company different from the other.
struct Profile<'a> {
    realm_id: &'a str,
    name: &'a str,
    email_domain: &'a str,
    city: &'static str,
    users: &'a [(&'static str, &'static str, &'static str, UserRole)],
    income_accounts: [&'static str; 3],
    items: &'static [(&'static str, &'static str, f64, usize)],
    customers: &'static [&'static str],
    vendors: &'static [(&'static str, &'static str)],
    employees: &'static [(&'static str, &'static str)],
}

const PROFILES: [Profile<'static>; 2] = [
    Profile {
        realm_id: "9341453050298464",
        name: "Craig's Design and Landscaping Services",
        email_domain: "craigsdesign.example",
        city: "Half Moon Bay",
        users: &[
            ("craig", "Craig", "Carlson", UserRole::Admin),
            ("dana", "Dana", "Whitfield", UserRole::Admin),
            ("sam", "Sam", "Ortiz", UserRole::User),
        ],
        income_accounts: [
            "Design income",
            "Landscaping Services",
            "Sales of Product Income",
        ],
        items: &[
            ("Design", "Service", 75.0, 0),
            ("Gardening", "Service", 25.0, 1),
            ("Installation", "Service", 50.0, 1),
            ("Trimming", "Service", 35.0, 1),
            ("Pest Control", "Service", 35.0, 1),
            ("Maintenance & Repair", "Service", 50.0, 1),
            ("Rocks", "NonInventory", 20.0, 2),
            ("Sprinkler Heads", "NonInventory", 2.0, 2),
            ("Pump", "NonInventory", 15.0, 2),
            ("Fountain", "NonInventory", 275.0, 2),
        ],
        customers: &[
            "Amy's Bird Sanctuary",
            "Bill's Windsurf Shop",
            "Cool Cars",
            "Diego Rodriguez",
            "Dukes Basketball Camp",
            "Dylan Sollfrank",
            "Freeman Sporting Goods",
            "Geeta Kalapatapu",
            "Gevelber Photography",
            "Jeff's Jalopies",
            "John Melton",
            "Kate Whelan",
            "Kookies by Kathy",
            "Mark Cho",
            "Paulsen Medical Supplies",
            "Pye's Cakes",
            "Rago Travel Agency",
            "Red Rock Diner",
            "Rondonuwu Fruit and Vegi",
            "Shara Barnett",
            "Sonnenschein Family Store",
            "Sushi by Katsuyuki",
            "Travis Waldron",
            "Video Games by Dan",
            "Wedding Planning by Whitney",
            "Weiskopf Consulting",
        ],
        vendors: &[
            ("Brosnahan Insurance Agency", "Insurance"),
            ("Cal Telephone", "Utilities"),
            ("Chin's Gas and Oil", "Automobile"),
            ("Computers by Jenni", "Office Expenses"),
            ("Ellis Equipment Rental", "Job Expenses"),
            ("Hall Properties", "Rent or Lease"),
            ("Hicks Hardware", "Job Expenses"),
            ("Lee Advertising", "Advertising"),
            ("Norton Lumber and Building Materials", "Job Expenses"),
            ("PG&E", "Utilities"),
            ("Robertson & Associates", "Legal & Professional Fees"),
            ("Tania's Nursery", "Cost of Goods Sold"),
        ],
        employees: &[
            ("Emily", "Platt"),
            ("John", "Johnson"),
            ("Maria", "Vasquez"),
            ("Tom", "Okafor"),
        ],
    },
    Profile {
        realm_id: "9341453050298465",
        name: "Harbor Bicycle Works",
        email_domain: "harborbicycle.example",
        city: "Portland",
        users: &[
            ("hana", "Hana", "Ito", UserRole::Admin),
            ("lee", "Lee", "Moreno", UserRole::Admin),
            ("pat", "Pat", "Kowalski", UserRole::User),
        ],
        income_accounts: ["Repairs", "Rentals", "Bicycle Sales"],
        items: &[
            ("Tune-up", "Service", 85.0, 0),
            ("Flat Repair", "Service", 20.0, 0),
            ("Wheel Build", "Service", 120.0, 0),
            ("Day Rental", "Service", 40.0, 1),
            ("Week Rental", "Service", 180.0, 1),
            ("Road Bike", "NonInventory", 1450.0, 2),
            ("City Bike", "NonInventory", 690.0, 2),
            ("Helmet", "NonInventory", 60.0, 2),
            ("Light Set", "NonInventory", 45.0, 2),
        ],
        customers: &[
            "Alder Street Cafe",
            "Beacon Courier Co",
            "Carmen Alvarez",
            "Cascade Tours",
            "Devon Price",
            "Eastside Elementary PTA",
            "Fern Hollow Inn",
            "Grace Liu",
            "Hawthorne Coffee Roasters",
            "Isaac Brennan",
            "Juniper Yoga Studio",
            "Kenji Watanabe",
            "Lakeside Property Management",
            "Maya Robinson",
            "Northwest Messenger Collective",
            "Omar Haddad",
            "Pearl District Hotel",
            "Quinn Delgado",
            "Riverfront Rentals",
            "Sofia Marin",
        ],
        vendors: &[
            ("Shimano Distribution", "Cost of Goods Sold"),
            ("Pacific Cycle Supply", "Cost of Goods Sold"),
            ("Harborside Properties", "Rent or Lease"),
            ("Bay Power & Light", "Utilities"),
            ("Coastal Insurance Group", "Insurance"),
            ("Spokes Media", "Advertising"),
            ("Nguyen & Partners CPA", "Legal & Professional Fees"),
            ("Metro Telecom", "Utilities"),
            ("Fleet Fuel", "Automobile"),
            ("Office Depot", "Office Expenses"),
        ],
        employees: &[("Ava", "Lindqvist"), ("Marcus", "Bell"), ("Rosa", "Ng")],
    },
];

/// (name, type, subtype); the income names come from the profile.
const CHART: &[(&str, &str, &str)] = &[
    ("Checking", "Bank", "Checking"),
    ("Savings", "Bank", "Savings"),
    (
        "Accounts Receivable (A/R)",
        "Accounts Receivable",
        "AccountsReceivable",
    ),
    (
        "Undeposited Funds",
        "Other Current Asset",
        "UndepositedFunds",
    ),
    ("Inventory Asset", "Other Current Asset", "Inventory"),
    ("Prepaid Expenses", "Other Current Asset", "PrepaidExpenses"),
    ("Truck", "Fixed Asset", "Vehicles"),
    (
        "Accounts Payable (A/P)",
        "Accounts Payable",
        "AccountsPayable",
    ),
    ("Mastercard", "Credit Card", "CreditCard"),
    (
        "Payroll Liabilities",
        "Other Current Liability",
        "PayrollTaxPayable",
    ),
    ("Notes Payable", "Long Term Liability", "NotesPayable"),
    ("Opening Balance Equity", "Equity", "OpeningBalanceEquity"),
    ("Retained Earnings", "Equity", "RetainedEarnings"),
    (
        "Owner's Pay & Personal Expenses",
        "Equity",
        "PersonalExpense",
    ),
    (
        "Cost of Goods Sold",
        "Cost of Goods Sold",
        "SuppliesMaterialsCogs",
    ),
    ("Advertising", "Expense", "AdvertisingPromotional"),
    ("Rent or Lease", "Expense", "RentOrLeaseOfBuildings"),
    ("Utilities", "Expense", "Utilities"),
    ("Insurance", "Expense", "Insurance"),
    (
        "Office Expenses",
        "Expense",
        "OfficeGeneralAdministrativeExpenses",
    ),
    ("Automobile", "Expense", "Auto"),
    (
        "Legal & Professional Fees",
        "Expense",
        "LegalProfessionalFees",
    ),
    ("Meals and Entertainment", "Expense", "EntertainmentMeals"),
    ("Job Expenses", "Expense", "SuppliesMaterials"),
    ("Payroll Expenses", "Expense", "PayrollExpenses"),
    ("Interest Earned", "Other Income", "InterestEarned"),
    ("Depreciation", "Other Expense", "Depreciation"),
];

/// How many demo companies the simulator has unless told otherwise: Craig's and Harbor's.
pub const DEFAULT_COMPANIES: usize = PROFILES.len();

/// The most demo companies one simulator builds (each holds a year of books in memory).
pub const MAX_COMPANIES: usize = 5_000;

/// The realm id of the first demo company; company `n` (from 0) is this plus `n`.
const FIRST_REALM: u64 = 9_341_453_050_298_464;

/// Places and given/family names that make the names of companies beyond the first two.
const PLACES: [&str; 25] = [
    "Alder Creek",
    "Bayview",
    "Cedar Hill",
    "Driftwood",
    "Eastgate",
    "Foxglove",
    "Granite Peak",
    "Hollow Oak",
    "Ironwood",
    "Juniper",
    "Kestrel",
    "Lakeshore",
    "Maple Ridge",
    "Northfield",
    "Old Mill",
    "Pinecrest",
    "Quarry Lane",
    "Redwood",
    "Silver Birch",
    "Tidewater",
    "Upland",
    "Valley Forge",
    "Willow Bend",
    "Yarrow",
    "Zephyr Point",
];
const GIVEN: [&str; 12] = [
    "Alex", "Bea", "Chris", "Dee", "Eli", "Fay", "Gus", "Ida", "Jon", "Kim", "Lou", "Mo",
];
const FAMILY: [&str; 12] = [
    "Adler", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haas", "Iqbal", "Jensen",
    "Kaur", "Larsen",
];
/// The two logins of every generated company: its admin (the owner) and a bookkeeper who is a
/// plain QuickBooks user.
const OWNER: &str = "owner";
const BOOKKEEPER: &str = "books";

/// Who company `index` is: realm id, name, email domain and users. The first two are the
/// hand-written profiles; the others are generated from the index alone (the seed only changes
/// their books), each with its own admin, so that no two companies share a QuickBooks user.
struct Identity {
    realm_id: String,
    name: String,
    email_domain: String,
    users: Vec<(&'static str, &'static str, &'static str, UserRole)>,
    /// Which hand-written profile lends its chart, items, customers and vendors.
    template: usize,
}

impl Identity {
    fn of(index: usize) -> Self {
        if let Some(profile) = PROFILES.get(index) {
            return Self {
                realm_id: profile.realm_id.to_owned(),
                name: profile.name.to_owned(),
                email_domain: profile.email_domain.to_owned(),
                users: profile.users.to_vec(),
                template: index,
            };
        }
        let template = index % PROFILES.len();
        let trade = if template == 0 {
            "Design and Landscaping"
        } else {
            "Bicycle Works"
        };
        let place = PLACES[(index / PROFILES.len()) % PLACES.len()];
        let round = index / (PROFILES.len() * PLACES.len());
        let name = if round == 0 {
            format!("{place} {trade}")
        } else {
            format!("{place} {trade} {}", round + 1)
        };
        let slug: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        Self {
            realm_id: (FIRST_REALM + index as u64).to_string(),
            name,
            email_domain: format!("{slug}.example"),
            users: vec![
                (
                    OWNER,
                    GIVEN[index % GIVEN.len()],
                    FAMILY[(index / GIVEN.len()) % FAMILY.len()],
                    UserRole::Admin,
                ),
                (
                    BOOKKEEPER,
                    GIVEN[(index + 5) % GIVEN.len()],
                    FAMILY[(index / GIVEN.len() + 7) % FAMILY.len()],
                    UserRole::User,
                ),
            ],
            template,
        }
    }

    /// The index of the company with this realm id, among `count` companies.
    fn index_of(realm_id: &str, count: usize) -> Option<usize> {
        let index = realm_id.parse::<u64>().ok()?.checked_sub(FIRST_REALM)?;
        let index = usize::try_from(index).ok()?;
        (index < count && Self::of(index).realm_id == realm_id).then_some(index)
    }

    fn profile(&self) -> Profile<'_> {
        let template = &PROFILES[self.template];
        Profile {
            realm_id: &self.realm_id,
            name: &self.name,
            email_domain: &self.email_domain,
            users: &self.users,
            ..*template
        }
    }
}

/// Builds the two default demo companies for a seed, around a day.
pub fn demo_companies(seed: u64, today: NaiveDate) -> Vec<Company> {
    demo_company_range(0..DEFAULT_COMPANIES, seed, today)
}

/// Builds demo companies `range` (from 0: Craig's, Harbor's, then generated ones) for a seed,
/// around a day. Company `n` is the same whatever the range it is built in. Built on every
/// core: a company's year of books takes a few milliseconds.
pub fn demo_company_range(
    range: std::ops::Range<usize>,
    seed: u64,
    today: NaiveDate,
) -> Vec<Company> {
    let indices: Vec<usize> = range.collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(indices.len().max(1));
    let chunk = indices.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&index| demo_company(index, seed, today))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_default())
            .collect()
    })
}

fn demo_company(index: usize, seed: u64, today: NaiveDate) -> Company {
    let identity = Identity::of(index);
    let profile = identity.profile();
    let users = profile
        .users
        .iter()
        .enumerate()
        .map(|(n, (login, given, family, role))| SimUser {
            email: format!("{login}@{}", profile.email_domain),
            given_name: (*given).to_owned(),
            family_name: (*family).to_owned(),
            role: *role,
            sub: format!(
                "{:08x}-5e1d-4c0a-9b7e-{:012x}",
                0x1a2b_0000 + index,
                0x51_0000 + n
            ),
        })
        .collect();
    Company {
        realm_id: profile.realm_id.to_owned(),
        name: profile.name.to_owned(),
        users: RwLock::new(users),
        books: RwLock::new(demo_books(&profile, seed.wrapping_add(index as u64), today)),
    }
}

/// Builds one company's books again (for `/_sim/reset`), among `count` companies.
pub fn demo_books_for(realm_id: &str, seed: u64, today: NaiveDate, count: usize) -> Option<Books> {
    let index = Identity::index_of(realm_id, count)?;
    let identity = Identity::of(index);
    Some(demo_books(
        &identity.profile(),
        seed.wrapping_add(index as u64),
        today,
    ))
}

struct Loader {
    books: Books,
    rng: StdRng,
    today: NaiveDate,
}

impl Loader {
    fn add(&mut self, entity: &str, body: Value, on: NaiveDate) -> Value {
        let Some(entity_type) = by_name(entity) else {
            return Value::Null;
        };
        let at = on
            .and_hms_opt(17, 30, 0)
            .map_or_else(Utc::now, |t| Utc.from_utc_datetime(&t));
        match self.books.create(entity_type, body, at) {
            Ok(value) => value,
            Err(fault) => {
                tracing::error!(entity, ?fault, "demo data refused");
                Value::Null
            }
        }
    }

    fn id_of(&self, entity: &str, field: &str, name: &str) -> String {
        self.books
            .all_named(entity)
            .find(|e| fields::text(e, field) == Some(name))
            .map(|e| fields::id(e).to_string())
            .unwrap_or_default()
    }

    fn day_in_month(&mut self, months_back: u32) -> NaiveDate {
        let first = first_of_month(self.today, months_back);
        let day = first + Duration::days(self.rng.random_range(0..28));
        day.min(self.today)
    }
}

fn first_of_month(today: NaiveDate, months_back: u32) -> NaiveDate {
    let total = today.year() * 12 + today.month0() as i32 - months_back as i32;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .unwrap_or(today)
}

fn demo_books(profile: &Profile<'_>, seed: u64, today: NaiveDate) -> Books {
    let mut loader = Loader {
        books: Books::default(),
        rng: StdRng::seed_from_u64(seed),
        today,
    };
    loader.books.bulk_loading = true;
    let start = first_of_month(today, 13);
    for (index, (name, account_type, subtype)) in CHART.iter().enumerate() {
        loader.add(
            "Account",
            json!({"Name": name, "AccountType": account_type, "AccountSubType": subtype, "AcctNum": format!("{}", 1000 + index * 10)}),
            start,
        );
    }
    for name in profile.income_accounts {
        loader.add(
            "Account",
            json!({"Name": name, "AccountType": "Income", "AccountSubType": "ServiceFeeIncome"}),
            start,
        );
    }
    for (name, days) in [
        ("Due on receipt", 0),
        ("Net 15", 15),
        ("Net 30", 30),
        ("Net 60", 60),
    ] {
        loader.add(
            "Term",
            json!({"Name": name, "Type": "STANDARD", "DueDays": days}),
            start,
        );
    }
    for name in ["Cash", "Check", "Visa", "MasterCard", "American Express"] {
        let kind = if name == "Cash" || name == "Check" {
            "NON_CREDIT_CARD"
        } else {
            "CREDIT_CARD"
        };
        loader.add("PaymentMethod", json!({"Name": name, "Type": kind}), start);
    }
    for name in ["Residential", "Commercial", "Online"] {
        loader.add("Class", json!({"Name": name}), start);
    }
    for name in ["Main Street", "Waterfront"] {
        loader.add("Department", json!({"Name": name}), start);
    }
    loader.add(
        "TaxCode",
        json!({"Name": "TAX", "Description": "Taxable", "Taxable": true}),
        start,
    );
    loader.add(
        "TaxCode",
        json!({"Name": "NON", "Description": "Non-taxable", "Taxable": false}),
        start,
    );
    let cogs = loader.id_of("Account", "Name", "Cost of Goods Sold");
    for (name, kind, price, income) in profile.items {
        let income_id = loader.id_of("Account", "Name", profile.income_accounts[*income]);
        let mut item = json!({
            "Name": name, "Type": kind, "UnitPrice": price, "Description": format!("{name}"),
            "IncomeAccountRef": {"value": income_id, "name": profile.income_accounts[*income]},
            "Taxable": kind != &"Service", "TrackQtyOnHand": false,
        });
        if kind == &"NonInventory" {
            item["PurchaseCost"] = fields::money(price * 0.55);
            item["ExpenseAccountRef"] = json!({"value": cogs, "name": "Cost of Goods Sold"});
        }
        loader.add("Item", item, start);
    }
    let streets = [
        "Main St",
        "Oak Ave",
        "Harbor Rd",
        "Pine St",
        "Bay Blvd",
        "Elm Ct",
        "Cedar Ln",
    ];
    for (index, name) in profile.customers.iter().enumerate() {
        let person = name.split(' ').count() == 2 && !name.contains('\'') && !name.contains("Co");
        let (given, family) = name.split_once(' ').unwrap_or((name, ""));
        let handle: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        let street = streets[index % streets.len()];
        let mut customer = json!({
            "DisplayName": name,
            "PrimaryEmailAddr": {"Address": format!("{handle}@example.com")},
            "PrimaryPhone": {"FreeFormNumber": format!("(555) 555-{:04}", 1000 + index * 37)},
            "BillAddr": {"Line1": format!("{} {street}", 100 + index * 13), "City": profile.city, "CountrySubDivisionCode": if profile.city == "Portland" { "OR" } else { "CA" }, "PostalCode": format!("9{:04}", 4019 + index)},
            "SalesTermRef": {"value": loader.id_of("Term", "Name", "Net 30")},
            "Notes": "",
        });
        if person {
            customer["GivenName"] = json!(given);
            customer["FamilyName"] = json!(family);
        } else {
            customer["CompanyName"] = json!(name);
        }
        loader.add("Customer", customer, start);
    }
    for (index, (name, _)) in profile.vendors.iter().enumerate() {
        let handle: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        loader.add(
            "Vendor",
            json!({
                "DisplayName": name, "CompanyName": name,
                "PrimaryEmailAddr": {"Address": format!("billing@{handle}.example")},
                "PrimaryPhone": {"FreeFormNumber": format!("(555) 444-{:04}", 2000 + index * 41)},
                "BillAddr": {"Line1": format!("{} Commerce Way", 10 + index * 7), "City": profile.city},
                "TermRef": {"value": loader.id_of("Term", "Name", "Net 30")},
                "Vendor1099": index % 4 == 0,
            }),
            start,
        );
    }
    for (index, (given, family)) in profile.employees.iter().enumerate() {
        loader.add(
            "Employee",
            json!({
                "GivenName": given, "FamilyName": family,
                "PrimaryEmailAddr": {"Address": format!("{}@{}", given.to_lowercase(), profile.email_domain)},
                "EmployeeNumber": format!("E{:03}", index + 1),
                "HiredDate": (start - Duration::days(400 + index as i64 * 90)).format("%Y-%m-%d").to_string(),
                "BillableTime": index % 2 == 0,
            }),
            start,
        );
    }
    seed_transactions(&mut loader, profile);
    loader.books.bulk_loading = false;
    loader.books.recompute_balances();
    let mut books = loader.books;
    books.company_info = json!({
        "CompanyName": profile.name,
        "LegalName": format!("{} LLC", profile.name),
        "CompanyAddr": {"Id": "1", "Line1": "123 Sierra Way", "City": profile.city, "Country": "US", "PostalCode": "94213"},
        "CustomerCommunicationAddr": {"Id": "1", "Line1": "123 Sierra Way", "City": profile.city},
        "LegalAddr": {"Id": "1", "Line1": "123 Sierra Way", "City": profile.city},
        "PrimaryPhone": {"FreeFormNumber": "(555) 555-0100"},
        "CompanyStartDate": start.format("%Y-%m-%d").to_string(),
        "FiscalYearStartMonth": "January",
        "Country": "US",
        "Email": {"Address": format!("office@{}", profile.email_domain)},
        "WebAddr": {"URI": format!("https://{}", profile.email_domain)},
        "SupportedLanguages": "en",
        "NameValue": [{"Name": "QBOIndustryType", "Value": "Other"}, {"Name": "SubscriptionStatus", "Value": "PAID"}, {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
        "domain": "QBO",
        "sparse": false,
        "Id": "1",
        "SyncToken": "3",
        "MetaData": {"CreateTime": crate::clock::metadata_time(Utc.from_utc_datetime(&start.and_hms_opt(9, 0, 0).unwrap_or_default())), "LastUpdatedTime": crate::clock::metadata_time(Utc.from_utc_datetime(&start.and_hms_opt(9, 0, 0).unwrap_or_default()))},
    });
    books.preferences = json!({
        "AccountingInfoPrefs": {"TrackDepartments": true, "DepartmentTerminology": "Location", "ClassTrackingPerTxn": true, "ClassTrackingPerTxnLine": false, "CustomerTerminology": "Customers", "BookCloseDate": null, "FirstMonthOfFiscalYear": "January", "UseAccountNumbers": true, "TaxYearMonth": "January", "TaxForm": "6"},
        "SalesFormsPrefs": {"CustomTxnNumbers": false, "AllowDeposit": true, "AllowDiscount": true, "DefaultTerms": {"value": "3"}, "ETransactionEnabledStatus": "NotApplicable"},
        "VendorAndPurchasesPrefs": {"TrackingByCustomer": true, "BillableExpenseTracking": true},
        "CurrencyPrefs": {"MultiCurrencyEnabled": false, "HomeCurrency": {"value": "USD"}},
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": false},
        "domain": "QBO", "sparse": false, "Id": "1", "SyncToken": "0",
        "MetaData": {"CreateTime": crate::clock::metadata_time(Utc.from_utc_datetime(&start.and_hms_opt(9, 0, 0).unwrap_or_default())), "LastUpdatedTime": crate::clock::metadata_time(Utc.from_utc_datetime(&start.and_hms_opt(9, 0, 0).unwrap_or_default()))},
    });
    books
}

fn seed_transactions(loader: &mut Loader, profile: &Profile<'_>) {
    let today = loader.today;
    let account = |loader: &Loader, name: &str| loader.id_of("Account", "Name", name);
    let checking = account(loader, "Checking");
    let card = account(loader, "Mastercard");
    let undeposited = account(loader, "Undeposited Funds");
    let opening = first_of_month(today, 13);
    loader.add(
        "JournalEntry",
        json!({
            "DocNumber": "OB-1", "PrivateNote": "Opening balances",
            "Line": [
                {"Amount": 25000.0, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": checking}}},
                {"Amount": 18000.0, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": account(loader, "Truck")}}},
                {"Amount": 15000.0, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"value": account(loader, "Notes Payable")}}},
                {"Amount": 28000.0, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"value": account(loader, "Opening Balance Equity")}}},
            ],
        }),
        opening,
    );
    let customers: Vec<String> = loader
        .books
        .all_named("Customer")
        .map(|c| fields::id(c).to_string())
        .collect();
    let vendors: Vec<(String, String)> = profile
        .vendors
        .iter()
        .map(|(name, expense)| {
            (
                loader.id_of("Vendor", "DisplayName", name),
                account(loader, expense),
            )
        })
        .collect();
    let items: Vec<(String, f64)> = loader
        .books
        .all_named("Item")
        .map(|i| (fields::id(i).to_string(), fields::amount(i, "UnitPrice")))
        .collect();
    let cash_method = loader.id_of("PaymentMethod", "Name", "Check");
    for months_back in (0..=12u32).rev() {
        let mut month_payments = Vec::new();
        for _ in 0..loader.rng.random_range(3..=5) {
            let day = loader.day_in_month(months_back);
            let customer = customers[loader.rng.random_range(0..customers.len())].clone();
            let lines: Vec<Value> = (0..loader.rng.random_range(1..=3))
                .map(|_| {
                    let (item, price) = items[loader.rng.random_range(0..items.len())].clone();
                    let qty = loader.rng.random_range(1..=8);
                    json!({"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price}})
                })
                .collect();
            let email = fields::text(
                loader
                    .books
                    .all_named("Customer")
                    .find(|c| fields::id(c).to_string() == customer)
                    .unwrap_or(&Value::Null),
                "PrimaryEmailAddr.Address",
            )
            .unwrap_or("billing@example.com")
            .to_owned();
            let invoice = loader.add(
                "Invoice",
                json!({"CustomerRef": {"value": customer}, "TxnDate": day.format("%Y-%m-%d").to_string(), "SalesTermRef": {"value": loader.id_of("Term", "Name", "Net 30")}, "BillEmail": {"Address": email}, "Line": lines}),
                day,
            );
            let age = (today - day).num_days();
            let roll: f64 = loader.rng.random();
            if age > 20 && roll < 0.85 {
                let total = fields::amount(&invoice, "TotalAmt");
                let paid = if roll < 0.1 {
                    fields::cents(total / 2.0)
                } else {
                    total
                };
                let pay_day = (day + Duration::days(loader.rng.random_range(7..35))).min(today);
                let payment = loader.add(
                    "Payment",
                    json!({
                        "CustomerRef": {"value": customer}, "TotalAmt": paid,
                        "TxnDate": pay_day.format("%Y-%m-%d").to_string(),
                        "PaymentMethodRef": {"value": cash_method},
                        "DepositToAccountRef": {"value": undeposited},
                        "Line": [{"Amount": paid, "LinkedTxn": [{"TxnId": fields::text(&invoice, "Id").unwrap_or_default(), "TxnType": "Invoice"}]}],
                    }),
                    pay_day,
                );
                month_payments.push((
                    fields::text(&payment, "Id").unwrap_or_default().to_owned(),
                    paid,
                    pay_day,
                ));
            }
        }
        let day = loader.day_in_month(months_back);
        let (item, price) = items[loader.rng.random_range(0..items.len())].clone();
        let customer = customers[loader.rng.random_range(0..customers.len())].clone();
        let qty = loader.rng.random_range(1..4);
        loader.add(
            "SalesReceipt",
            json!({
                "CustomerRef": {"value": customer},
                "TxnDate": day.format("%Y-%m-%d").to_string(),
                "DepositToAccountRef": {"value": checking},
                "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price}}],
            }),
            day,
        );
        if months_back % 2 == 0 {
            let day = loader.day_in_month(months_back);
            let (item, price) = items[loader.rng.random_range(0..items.len())].clone();
            let customer = customers[loader.rng.random_range(0..customers.len())].clone();
            let qty = loader.rng.random_range(2..10);
            loader.add(
                "Estimate",
                json!({
                    "CustomerRef": {"value": customer},
                    "TxnDate": day.format("%Y-%m-%d").to_string(),
                    "TxnStatus": if months_back > 2 { "Accepted" } else { "Pending" },
                    "ExpirationDate": (day + Duration::days(30)).format("%Y-%m-%d").to_string(),
                    "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price}}],
                }),
                day,
            );
        }
        if months_back % 4 == 1 {
            let day = loader.day_in_month(months_back);
            let (item, price) = items[loader.rng.random_range(0..items.len())].clone();
            let customer = customers[loader.rng.random_range(0..customers.len())].clone();
            loader.add(
                "CreditMemo",
                json!({
                    "CustomerRef": {"value": customer},
                    "TxnDate": day.format("%Y-%m-%d").to_string(),
                    "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": price}}],
                }),
                day,
            );
        }
        for _ in 0..loader.rng.random_range(2..=3) {
            let day = loader.day_in_month(months_back);
            let (vendor, expense) = vendors[loader.rng.random_range(0..vendors.len())].clone();
            let amount = fields::cents(loader.rng.random_range(80.0..1800.0));
            let bill = loader.add(
                "Bill",
                json!({
                    "VendorRef": {"value": vendor}, "TxnDate": day.format("%Y-%m-%d").to_string(),
                    "Line": [{"Amount": amount, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": expense}}}],
                }),
                day,
            );
            if (today - day).num_days() > 15 && loader.rng.random::<f64>() < 0.8 {
                let pay_day = (day + Duration::days(loader.rng.random_range(5..30))).min(today);
                loader.add(
                    "BillPayment",
                    json!({
                        "VendorRef": {"value": vendor}, "PayType": "Check", "TotalAmt": amount,
                        "TxnDate": pay_day.format("%Y-%m-%d").to_string(),
                        "CheckPayment": {"BankAccountRef": {"value": checking}, "PrintStatus": "NotSet"},
                        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": fields::text(&bill, "Id").unwrap_or_default(), "TxnType": "Bill"}]}],
                    }),
                    pay_day,
                );
            }
        }
        for (payee, expense, paid_from, kind) in [
            (None, "Meals and Entertainment", card.clone(), "CreditCard"),
            (Some(2usize), "Automobile", card.clone(), "CreditCard"),
            (None, "Office Expenses", checking.clone(), "Check"),
        ] {
            let day = loader.day_in_month(months_back);
            let amount = fields::cents(loader.rng.random_range(20.0..400.0));
            let mut purchase = json!({
                "PaymentType": kind, "AccountRef": {"value": paid_from},
                "TxnDate": day.format("%Y-%m-%d").to_string(),
                "Line": [{"Amount": amount, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account(loader, expense)}}}],
            });
            if let Some(index) = payee {
                purchase["EntityRef"] =
                    json!({"value": vendors[index % vendors.len()].0, "type": "Vendor"});
            }
            loader.add("Purchase", purchase, day);
        }
        if !month_payments.is_empty() && months_back > 0 {
            let day = month_payments
                .iter()
                .map(|p| p.2)
                .max()
                .unwrap_or(today)
                .min(today);
            let lines: Vec<Value> = month_payments
                .iter()
                .map(|(id, paid, _)| json!({"Amount": paid, "LinkedTxn": [{"TxnId": id, "TxnType": "Payment", "TxnLineId": "0"}]}))
                .collect();
            loader.add(
                "Deposit",
                json!({"DepositToAccountRef": {"value": checking}, "TxnDate": day.format("%Y-%m-%d").to_string(), "Line": lines}),
                day,
            );
        }
        if months_back % 3 == 0 {
            let day = first_of_month(today, months_back).min(today);
            loader.add(
                "JournalEntry",
                json!({
                    "PrivateNote": "Quarterly depreciation of the truck",
                    "TxnDate": day.format("%Y-%m-%d").to_string(),
                    "Line": [
                        {"Amount": 450.0, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": account(loader, "Depreciation")}}},
                        {"Amount": 450.0, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"value": account(loader, "Truck")}}},
                    ],
                }),
                day,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::ledger::{self, Basis};

    #[test]
    fn demo_books_are_deterministic_and_balanced() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
        let first = demo_companies(7, today);
        let second = demo_companies(7, today);
        assert_eq!(first.len(), 2);
        for (a, b) in first.iter().zip(&second) {
            let a = a.books.read();
            let b = b.books.read();
            for name in [
                "Customer",
                "Invoice",
                "Bill",
                "Payment",
                "Deposit",
                "JournalEntry",
            ] {
                let left: Vec<&Value> = a.all_named(name).collect();
                let right: Vec<&Value> = b.all_named(name).collect();
                assert!(!left.is_empty(), "{name} missing");
                assert_eq!(left, right, "{name} differs between two builds");
            }
            let total: f64 = ledger::postings(&a, Basis::Accrual)
                .iter()
                .map(|p| p.amount)
                .sum();
            assert!(total.abs() < 0.01, "ledger out of balance by {total}");
            let cash: f64 = ledger::postings(&a, Basis::Cash)
                .iter()
                .map(|p| p.amount)
                .sum();
            assert!(cash.abs() < 0.01, "cash ledger out of balance by {cash}");
        }
        let other_seed = demo_companies(8, today);
        let a = first[0].books.read();
        let c = other_seed[0].books.read();
        assert_ne!(
            a.all_named("Invoice").collect::<Vec<_>>(),
            c.all_named("Invoice").collect::<Vec<_>>()
        );
    }
}
