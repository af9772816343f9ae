"""Wire fidelity: drive qbo-sim with Intuit's own Python libraries.

`intuit-oauth` (intuitlib) does discovery, the code exchange (validating the id_token
against the JWKS), userinfo, refresh and revoke; `python-quickbooks` queries, creates,
updates sparsely, sends a batch, reads reports and change data capture, meets a stale
SyncToken and the throttle, and verifies a webhook's signature. The `test_item_N_*` tests
check that the simulator refuses what QuickBooks refuses, one per numbered row of the
fidelity table in docs/simulator.md, through the libraries where they can express it and raw
requests where they cannot.

How the libraries are pointed at the simulator, as little as possible:
- intuitlib: `AuthClient(..., environment=<discovery URL>)`. intuitlib accepts a URL in
  place of "sandbox"/"production" and reads every endpoint from that discovery document,
  which qbo-sim fills with its own base URL.
- python-quickbooks: the instance attribute `api_url_v3` is set to `<base>/v3` (the class
  hard-codes Intuit's host there). Its OAuth2Session (requests-oauthlib) refuses plain
  HTTP unless `OAUTHLIB_INSECURE_TRANSPORT=1`, which this module sets: the simulator
  listens on 127.0.0.1 without TLS.

The simulator binary is `$QBO_SIM_BIN` (default: <repo>/target/debug/qbo-sim), started on
127.0.0.1:0; its one stdout line gives the port.
"""

import datetime
import http.server
import json
import os
import queue
import threading
import pathlib
import re
import subprocess
import urllib.parse

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef, EmailAddress
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item

os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

ROOT = pathlib.Path(__file__).resolve().parents[4]
BIN = os.environ.get("QBO_SIM_BIN", str(ROOT / "target" / "debug" / "qbo-sim"))
ADMIN = "craig@craigsdesign.example"
REALM = "9341453050298464"
REDIRECT = "http://localhost:8000/callback"
SCOPES = [Scopes.ACCOUNTING, Scopes.OPENID, Scopes.EMAIL, Scopes.PROFILE]


@pytest.fixture
def sim():
    """A fresh simulator approving every authorization as Craig, an admin of REALM."""
    process = subprocess.Popen(
        [BIN, "--listen", "127.0.0.1:0", "--auto-consent", f"{ADMIN}:{REALM}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"qbo-sim listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, f"unexpected ready line {line!r}"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def configure(base, **changes):
    response = requests.post(f"{base}/_sim/config", json=changes, timeout=10)
    assert response.status_code == 200, response.text


def stats(base):
    return requests.get(f"{base}/_sim/stats", timeout=10).json()


def connect(base, client_id="wire-app"):
    """The whole authorization code flow through intuitlib; answers the AuthClient."""
    client = AuthClient(client_id, "wire-secret", REDIRECT, f"{base}/.well-known/openid_configuration")
    assert client.token_endpoint == f"{base}/oauth2/v1/tokens/bearer"
    url = client.get_authorization_url(SCOPES)
    assert url.startswith(f"{base}/connect/oauth2?")
    redirect = requests.get(url, allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    callback = urllib.parse.urlparse(redirect.headers["Location"])
    assert callback.path == "/callback"
    params = urllib.parse.parse_qs(callback.query)
    assert params["state"] == [client.state_token]
    assert params["realmId"] == [REALM]
    client.get_bearer_token(params["code"][0], realm_id=params["realmId"][0])
    return client


def quickbooks(base, client):
    qb = QuickBooks(auth_client=client, refresh_token=client.refresh_token, company_id=client.realm_id, minorversion=75)
    qb.api_url_v3 = f"{base}/v3"
    return qb


def test_intuit_oauth_discovery_exchange_userinfo_refresh_and_revoke(sim):
    client = connect(sim)
    assert client.access_token and client.refresh_token
    assert client.expires_in == 3600
    assert client.x_refresh_token_expires_in == 8640000
    # intuitlib keeps the id_token only after verifying it against the JWKS.
    assert client.id_token is not None

    info = client.get_user_info().json()
    assert info["email"] == ADMIN
    assert info["emailVerified"] is True

    first_refresh = client.refresh_token
    client.refresh()
    assert client.refresh_token == first_refresh, "inside the rotation interval the value stays"

    configure(sim, rotation_interval_s=0)
    client.refresh()
    assert client.refresh_token != first_refresh, "outside it the value rotates"
    with pytest.raises(AuthClientError) as refused:
        client.refresh(refresh_token=first_refresh)
    assert refused.value.status_code == 400
    assert refused.value.response.json()["error"] == "invalid_grant"

    assert client.revoke() is True
    with pytest.raises(AuthClientError):
        client.refresh()

    counters = stats(sim)
    assert counters["code_exchanges"] == 1
    assert counters["refresh_requests"] == 4
    assert counters["refresh_rotations"] == 1
    assert counters["invalid_grant"] == 2
    assert counters["realms"][REALM]["code_exchanges"] == 1


def test_forced_invalid_grant_reaches_intuitlib(sim):
    client = connect(sim)
    configure(sim, force_invalid_grant=True)
    with pytest.raises(AuthClientError) as refused:
        client.refresh()
    assert refused.value.status_code == 400


def test_python_quickbooks_queries(sim):
    qb = quickbooks(sim, connect(sim))
    page = Customer.all(qb=qb, max_results=5)
    assert len(page) == 5
    ordered = Customer.all(order_by="DisplayName DESC", qb=qb, max_results=3)
    names = [c.DisplayName for c in ordered]
    assert names == sorted(names, key=str.lower, reverse=True)
    amy = Customer.filter(DisplayName="Amy's Bird Sanctuary", qb=qb)
    assert len(amy) == 1 and amy[0].Id
    assert Customer.count(qb=qb) > 10
    assert any(item.Name == "Rocks" for item in Item.all(qb=qb))
    chosen = Customer.choose(["1", "2"], qb=qb)
    assert sorted(c.Id for c in chosen) == ["1", "2"]
    with pytest.raises(QuickbooksException) as refused:
        Customer.query("SELECT * FROM Customer MAXRESULTS 1500", qb=qb)
    assert refused.value.error_code == 4001
    assert "Max allowed value is 1000" in refused.value.detail


def test_python_quickbooks_create_sparse_update_and_stale_sync_token(sim):
    qb = quickbooks(sim, connect(sim))
    customer = Customer()
    customer.DisplayName = "Wire Fidelity Supplies"
    customer.Notes = "made by python-quickbooks"
    customer.PrimaryEmailAddr = EmailAddress()
    customer.PrimaryEmailAddr.Address = "wire@example.com"
    created = customer.save(qb=qb, request_id="wire-create-1")
    assert created.Id and created.SyncToken == "0"

    again = Customer()
    again.DisplayName = "Wire Fidelity Supplies"
    replayed = again.save(qb=qb, request_id="wire-create-1")
    assert replayed.Id == created.Id, "the same requestid answers the first result"

    fetched = Customer.get(created.Id, qb=qb)
    sparse = Customer()
    sparse.Id = fetched.Id
    sparse.SyncToken = fetched.SyncToken
    sparse.sparse = True
    # A fresh python-quickbooks object sends its "" defaults (Notes, Title…) even when
    # sparse; only the None ones (addresses, references) stay out of the request.
    sparse.DisplayName = fetched.DisplayName
    sparse.CompanyName = "Wire Fidelity"
    updated = sparse.save(qb=qb)
    assert updated.SyncToken == "1"
    assert updated.CompanyName == "Wire Fidelity"
    assert updated.PrimaryEmailAddr.Address == "wire@example.com", "a sparse update keeps what it did not send"
    assert updated.Notes == "", "and takes what it did send, empty strings included"

    stale = fetched  # still at SyncToken 0
    stale.Notes = "too late"
    with pytest.raises(QuickbooksException) as refused:
        stale.save(qb=qb)
    assert refused.value.error_code == 5010

    invoice = Invoice.get(1, qb=qb)
    assert invoice.TotalAmt > 0
    assert stats(sim)["stale_object"] == 1

    made = []
    for name in ("Batch One Ltd", "Batch Two Ltd"):
        customer = Customer()
        customer.DisplayName = name
        made.append(customer)
    batch = batch_create(made, qb=qb)
    assert not batch.faults
    assert sorted(c.DisplayName for c in batch.successes) == ["Batch One Ltd", "Batch Two Ltd"]


def test_python_quickbooks_attachable_upload_read_and_query(sim, tmp_path):
    """python-quickbooks' Attachable uploads through `upload` (its multipart body has bare LF
    line ends and a base64 content part), reads back, and is found by its entity."""
    client = connect(sim)
    qb = quickbooks(sim, client)
    invoice = Invoice.all(qb=qb, max_results=1)[0]
    link = AttachableRef()
    link.EntityRef = ref(invoice.Id)
    link.EntityRef.type = "Invoice"

    data = b"%PDF-1.4\n" + bytes(range(256)) * 8
    receipt = Attachable()
    receipt.AttachableRef = [link]
    receipt.FileName = "receipt.pdf"
    receipt.ContentType = "application/pdf"
    receipt._FileBytes = data
    made = receipt.save(qb=qb)
    assert made.Id and made.Size == len(data)

    scan = tmp_path / "scan.png"
    scan.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    image = Attachable()
    image.AttachableRef = [link]
    image.FileName = "scan.png"
    image.ContentType = "image/png"
    image._FilePath = str(scan)
    second = image.save(qb=qb)

    read = Attachable.get(made.Id, qb=qb)
    assert read.FileName == "receipt.pdf" and read.ContentType == "application/pdf"
    assert requests.get(read.TempDownloadUri, timeout=10).content == data
    found = Attachable.where(
        f"AttachableRef.EntityRef.Type = 'Invoice' AND AttachableRef.EntityRef.value = '{invoice.Id}'", qb=qb
    )
    assert sorted(a.Id for a in found) == sorted([made.Id, second.Id])
    download = api(sim, client, "GET", f"download/{second.Id}", params={"minorversion": 75})
    assert download.headers["Content-Type"].startswith("text/plain")
    assert requests.get(download.text, timeout=10).content == scan.read_bytes()

    # A file type QuickBooks does not take comes back as a fault in AttachableResponse.
    bad = Attachable()
    bad.AttachableRef = [link]
    bad.FileName = "setup.exe"
    bad.ContentType = "application/octet-stream"
    bad._FileBytes = b"MZ"
    with pytest.raises(KeyError):
        bad.save(qb=qb)


def test_python_quickbooks_reports_cdc_and_throttle(sim):
    qb = quickbooks(sim, connect(sim))
    report = qb.get_report("ProfitAndLoss", qs={"accounting_method": "Accrual"})
    assert report["Header"]["ReportName"] == "ProfitAndLoss"
    groups = [row.get("group") for row in report["Rows"]["Row"]]
    assert "Income" in groups and "NetIncome" in groups

    customer = Customer()
    customer.DisplayName = "Changed Lately Ltd"
    customer.save(qb=qb)
    changes = change_data_capture([Customer, Invoice], recent(), qb=qb)
    assert any(c.DisplayName == "Changed Lately Ltd" for c in changes.Customer)

    configure(sim, rate_limit_per_minute=1)
    with pytest.raises(QuickbooksException) as throttled:
        for _ in range(3):
            Customer.get(1, qb=qb)
    assert "429" in str(throttled.value.message)
    assert stats(sim)["throttled"] >= 1


def recent():
    """Ten minutes ago, in the simulator companies' time zone (UTC-8), as Intuit expects."""
    zone = datetime.timezone(datetime.timedelta(hours=-8))
    moment = datetime.datetime.now(zone) - datetime.timedelta(minutes=10)
    return moment.strftime("%Y-%m-%dT%H:%M:%S-08:00")


def test_webhooks_verify_with_python_quickbooks(sim):
    """A notification signed by qbo-sim passes python-quickbooks' own signature check."""
    arrived = queue.Queue()

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
            arrived.put((self.headers["intuit-signature"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        configure(sim, webhook_url=f"http://127.0.0.1:{server.server_port}/hook", webhook_verifier_token="wire-verifier")
        qb = quickbooks(sim, connect(sim))
        customer = Customer()
        customer.DisplayName = "Webhook Wire Co"
        customer.save(qb=qb)
        signature, body = arrived.get(timeout=20)
        assert qb.validate_webhook_signature(body, signature, "wire-verifier")
        assert not qb.validate_webhook_signature(body, signature, "another-token")
        event = json.loads(body)["eventNotifications"][0]
        assert event["realmId"] == REALM
        assert event["dataChangeEvent"]["entities"][0]["operation"] == "Create"
    finally:
        server.shutdown()


# ---- Fidelity: what QuickBooks refuses (docs/simulator.md, one test per numbered item) ----

from quickbooks.exceptions import AuthorizationException, ValidationException
from quickbooks.objects.bill import Bill
from quickbooks.objects.detailline import AccountBasedExpenseLine, AccountBasedExpenseLineDetail
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.base import Ref
from quickbooks.objects.purchase import Purchase
from quickbooks.objects.vendor import Vendor


def api(base, client, method, path, **kwargs):
    """A raw Accounting API request, for what python-quickbooks cannot express."""
    headers = {"Authorization": f"Bearer {client.access_token}", "Accept": "application/json"}
    return requests.request(method, f"{base}/v3/company/{REALM}/{path}", headers=headers, timeout=10, **kwargs)


def ref(value):
    r = Ref()
    r.value = str(value)
    return r


def sales_invoice(qty, price, amount):
    line = SalesItemLine()
    line.Amount = amount
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = ref(1)
    line.SalesItemLineDetail.Qty = qty
    line.SalesItemLineDetail.UnitPrice = price
    invoice = Invoice()
    invoice.CustomerRef = ref(1)
    invoice.Line.append(line)
    return invoice


def refused(call):
    with pytest.raises(QuickbooksException) as caught:
        call()
    return caught.value


def test_item_1_writes_are_validated(sim):
    qb = quickbooks(sim, connect(sim))
    saved = sales_invoice(1, 10, 10).save(qb=qb)
    assert saved.Id and saved.TotalAmt == 10, "python-quickbooks' own defaults pass"

    bogus = sales_invoice(1, 10, 10)
    bogus.Bogus = 1
    error = refused(lambda: bogus.save(qb=qb))
    assert isinstance(error, ValidationException) and error.error_code == 2010
    assert 'Unrecognized field "Bogus"' in error.detail

    dated = sales_invoice(1, 10, 10)
    dated.TxnDate = "31/12/2025"
    assert refused(lambda: dated.save(qb=qb)).error_code == 2010

    wordy = sales_invoice(1, 10, 10)
    wordy.Line[0].Amount = "abc"
    wordy.Line[0].SalesItemLineDetail = None
    assert refused(lambda: wordy.save(qb=qb)).error_code == 2010

    odd = sales_invoice(1, 10, 10)
    odd.Line[0].DetailType = "BogusDetail"
    assert refused(lambda: odd.save(qb=qb)).error_code == 2010


def test_item_2_only_filterable_properties_are_queryable(sim):
    qb = quickbooks(sim, connect(sim))
    for call in [
        lambda: Vendor.filter(PrimaryEmailAddr="x@y.com", qb=qb),
        lambda: Vendor.where("Balance > '0'", qb=qb),
        lambda: Customer.filter(SyncToken="0", qb=qb),
        lambda: Purchase.filter(AccountRef="1", qb=qb),
        lambda: Customer.all(order_by="BillAddr.City", qb=qb),
        lambda: Customer.where("Balance LIKE '1%'", qb=qb),
    ]:
        error = refused(call)
        assert error.error_code == 4001, error.detail
    assert "property 'PrimaryEmailAddr' is not queryable" in refused(
        lambda: Vendor.filter(PrimaryEmailAddr="x@y.com", qb=qb)
    ).detail
    assert Customer.where("Balance > '0'", order_by="Balance DESC", qb=qb)


def test_item_3_line_arithmetic(sim):
    qb = quickbooks(sim, connect(sim))
    error = refused(lambda: sales_invoice(2, 10, 999).save(qb=qb))
    assert error.error_code == 6070
    assert sales_invoice(3, 0.335, 1.01).save(qb=qb).TotalAmt == 1.01, "rounded half-up"


def test_item_4_duplicate_doc_number(sim):
    client = connect(sim)
    qb = quickbooks(sim, client)

    def bill():
        line = AccountBasedExpenseLine()
        line.Amount = 40
        line.AccountBasedExpenseLineDetail = AccountBasedExpenseLineDetail()
        line.AccountBasedExpenseLineDetail.AccountRef = ref(1)
        made = Bill()
        made.VendorRef = ref(1)
        made.DocNumber = "WIRE-1"
        made.Line.append(line)
        return made

    bill().save(qb=qb)
    error = refused(lambda: bill().save(qb=qb))
    assert error.error_code == 6140
    assert "DocNumber=WIRE-1" in error.detail
    allowed = bill().save(qb=qb, params={"include": "allowduplicatedocnum"})
    assert allowed.DocNumber == "WIRE-1"


def test_item_5_open_balance_blocks_deactivation(sim):
    qb = quickbooks(sim, connect(sim))
    owing = Customer.where("Balance > '0'", max_results=1, qb=qb)[0]
    owing.Active = False
    error = refused(lambda: owing.save(qb=qb))
    assert error.error_code == 6000
    assert "open balance" in error.detail


def test_item_6_error_shapes(sim):
    client = connect(sim)
    qb = quickbooks(sim, client)

    def inject(fault):
        response = requests.post(f"{sim}/_sim/inject-fault", json={"fault": fault}, timeout=10)
        assert response.status_code == 200, response.text

    for fault, marker in [
        ("authentication_failed", '"code":"3200"'),
        ("authentication_fault", '"type":"AuthenticationFault"'),
        ("authentication_fault_xml", '<Fault type="AuthenticationFault"><Error code="100">'),
    ]:
        inject(fault)
        with pytest.raises(AuthorizationException) as caught:
            Customer.get(1, qb=qb)
        assert caught.value.error_code == 401
        assert marker in caught.value.detail, caught.value.detail

    response = requests.get(
        f"{sim}/v3/company/9341453050298465/customer/1",
        headers={"Authorization": f"Bearer {client.access_token}", "Accept": "application/json"},
        timeout=10,
    )
    assert response.status_code == 403
    fault = response.json()["fault"]
    assert fault["type"] == "SERVICE"
    assert fault["error"][0]["message"] == "message=AuthorizationFailed; errorCode=003100; statusCode=403"
    inject("authorization_failed")
    error = refused(lambda: Customer.get(1, qb=qb))
    assert "403" in str(error) and "003100" in str(error)


def test_item_7_intuit_tid(sim):
    client = connect(sim)
    seen = set()
    for response in [
        api(sim, client, "GET", "customer/1"),
        api(sim, client, "GET", "customer/1"),
        api(sim, client, "GET", "invoice/99999"),
        requests.get(f"{sim}/v3/company/{REALM}/customer/1", headers={"Authorization": "Bearer nope"}, timeout=10),
        requests.post(
            f"{sim}/oauth2/v1/tokens/bearer",
            auth=("wire-app", "wire-secret"),
            data={"grant_type": "refresh_token", "refresh_token": "nonsense"},
            timeout=10,
        ),
    ]:
        tid = response.headers.get("intuit_tid")
        assert tid and tid.startswith("1-"), response.headers
        seen.add(tid)
    assert len(seen) == 5, "unique on every answer, errors included"


def test_item_8_report_col_keys(sim):
    qb = quickbooks(sim, connect(sim))
    ledger = qb.get_report("GeneralLedger")
    amount = next(c for c in ledger["Columns"]["Column"] if c["ColTitle"] == "Amount")
    assert amount["ColType"] == "Money"
    assert amount["MetaData"] == [{"Name": "ColKey", "Value": "subt_nat_amount"}]
    profit = qb.get_report("ProfitAndLoss")
    assert profit["Columns"]["Column"][0]["MetaData"] == [{"Name": "ColKey", "Value": "account"}]


def test_item_9_refresh_token_lifetimes(sim):
    client = connect(sim)
    assert client.x_refresh_token_expires_in == 8640000
    advanced = requests.post(f"{sim}/_sim/advance-clock", json={"seconds": 1000}, timeout=10)
    assert advanced.status_code == 200
    client.refresh()
    # What is left of the same value (the simulator's clock also runs on by real seconds).
    assert 8640000 - 1010 <= client.x_refresh_token_expires_in <= 8640000 - 1000
    answer = requests.post(
        client.token_endpoint,
        auth=("wire-app", "wire-secret"),
        headers={"x-include-refresh-token-hard-expires-in": "true", "Accept": "application/json"},
        data={"grant_type": "refresh_token", "refresh_token": client.refresh_token},
        timeout=10,
    ).json()
    assert 157680000 - 1010 <= answer["x_refresh_token_hard_expires_in"] <= 157680000 - 1000
    assert 8640000 - 1010 <= answer["x_refresh_token_expires_in"] <= 8640000 - 1000


def test_item_10_smaller_rules(sim):
    client = connect(sim)
    qb = quickbooks(sim, client)
    customer = Customer()
    customer.DisplayName = "Sparse As Text Ltd"
    customer.Notes = "keep me"
    made = customer.save(qb=qb)
    answer = api(sim, client, "POST", "customer",
                 json={"Id": made.Id, "SyncToken": made.SyncToken, "sparse": "true", "CompanyName": "Sparse"})
    assert answer.status_code == 200
    assert answer.json()["Customer"]["Notes"] == "keep me", "\"true\" as text is a sparse update"

    invoice = sales_invoice(1, 30, 30).save(qb=qb)
    invoice.void(qb=qb)
    voided = Invoice.get(invoice.Id, qb=qb)
    assert refused(lambda: voided.void(qb=qb)).error_code == 6000
    voided.PrivateNote = "edited"
    assert refused(lambda: voided.save(qb=qb)).error_code == 6000

    with pytest.raises(AuthClientError) as revoked:
        client.revoke(token="nonsense")
    assert revoked.value.status_code == 400

    posted = requests.post(
        client.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": client.refresh_token,
              "client_id": "wire-app", "client_secret": "wire-secret"},
        timeout=10,
    )
    assert posted.status_code == 200, "client_secret_post, as discovery advertises"

    found = Customer.query("select * from Customer where displayname = 'Sparse As Text Ltd' startposition 0", qb=qb)
    assert [c.Id for c in found] == [made.Id]


from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.estimate import Estimate
from quickbooks.objects.preferences import Preferences


def test_company_settings_and_estimate_sending(sim):
    """python-quickbooks' CompanyInfo and Preferences `save` (a full update of what was read)
    and `Estimate.send`, as docs/simulator.md's fidelity row 12 describes them."""
    client = connect(sim)
    qb = quickbooks(sim, client)

    info = CompanyInfo.get(REALM, qb=qb)
    info.LegalName = "Craig's Design LLC"
    saved = info.save(qb=qb)
    assert saved.LegalName == "Craig's Design LLC"
    assert int(saved.SyncToken) == int(info.SyncToken) + 1
    assert CompanyInfo.get(REALM, qb=qb).LegalName == "Craig's Design LLC"
    info.LegalName = "Too late"  # still at the old SyncToken
    assert refused(lambda: info.save(qb=qb)).error_code == 5010

    prefs = Preferences.get(qb=qb)
    prefs.AccountingInfoPrefs.TrackDepartments = False
    saved = prefs.save(qb=qb)
    assert saved.AccountingInfoPrefs.TrackDepartments is False
    assert Preferences.get(qb=qb).AccountingInfoPrefs.TrackDepartments is False
    changed = change_data_capture([Preferences], recent(), qb=qb)
    assert changed.Preferences[0].AccountingInfoPrefs.TrackDepartments is False

    fresh = Preferences.get(qb=qb)
    fresh.CurrencyPrefs.HomeCurrency.value = "EUR"  # read-only: QuickBooks refuses it
    assert refused(lambda: fresh.save(qb=qb)).error_code == 2010

    estimate = Estimate.all(max_results=1, qb=qb)[0]
    estimate.send(qb=qb, send_to="buyer@example.com")
    sent = Estimate.get(estimate.Id, qb=qb)
    assert sent.EmailStatus == "EmailSent"
    assert sent.BillEmail.Address == "buyer@example.com"
