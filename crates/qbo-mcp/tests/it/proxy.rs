//! qbo-mcp behind a real nginx terminating TLS (docs/deployment.md): the site file shipped in
//! `deploy/nginx/qbo-mcp.conf`, with this test's ports, a certificate it makes with `openssl`
//! and two replicas on PostgreSQL put in, run by an unprivileged nginx in a temp directory.
//! Through it: first-run setup and sign-in (`__Host-` cookies), OAuth discovery (every URL in
//! the metadata https and answering through the proxy), the Intuit connect callback, an MCP
//! tool call, and the sign-in limit counting the real client, never an address it wrote itself.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::connections::{CRAIG, consent_as, simulator};
use crate::harness::{Backend, TestDb, TestServer, personal_token, run_peer};
use crate::people::{Browser, PASSWORD, complete_setup, csrf_field};
use crate::replicas::{Answer, call_tool, connect_company, count_customers};

/// The address this test's client connects from: not the proxy's (127.0.0.1), so the
/// replicas can tell the client from the trusted proxy.
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// An address a client writes into forwarded headers to pass for someone else.
const SPOOFED: &str = "203.0.113.66";

/// A port free right now on 127.0.0.1, for nginx (which cannot report a port 0 it bound).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is not installed: run `scripts/test-peers` (apt-get install nginx)")
}

/// A running nginx; killed when dropped.
struct Nginx {
    _child: Child,
    /// `https://localhost:PORT`
    base: String,
    port: u16,
    cert: Vec<u8>,
}

/// `deploy/nginx/qbo-mcp.conf` with `from` replaced by `to`, failing if `from` is not there:
/// a change to the shipped file must change this test too.
fn put(site: String, from: &str, to: &str) -> String {
    assert!(
        site.contains(from),
        "deploy/nginx/qbo-mcp.conf no longer contains {from:?}; update tests/it/proxy.rs"
    );
    site.replace(from, to)
}

/// Makes a self-signed certificate for `localhost` and starts nginx with the shipped site file
/// in front of `replicas`.
async fn start_nginx(dir: &Path, port: u16, replicas: &[&TestServer]) -> Nginx {
    let out = run_peer(
        Path::new("openssl"),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
        dir,
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "openssl: {}", out.stderr);

    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/qbo-mcp.conf");
    let mut site = std::fs::read_to_string(&shipped).expect("deploy/nginx/qbo-mcp.conf");
    let upstreams = replicas
        .iter()
        .map(|r| format!("server {};", r.url.trim_start_matches("http://")))
        .collect::<Vec<_>>();
    site = put(site, "server 10.0.0.11:8080;", &upstreams[0]);
    site = put(site, "server 10.0.0.12:8080;", &upstreams[1]);
    site = put(
        site,
        "listen 80;",
        &format!("listen 127.0.0.1:{};", free_port()),
    );
    site = put(site, "listen [::]:80;\n", "");
    site = put(
        site,
        "listen 443 ssl http2;",
        &format!("listen 127.0.0.1:{port} ssl http2;"),
    );
    site = put(site, "listen [::]:443 ssl http2;\n", "");
    site = put(
        site,
        "/etc/letsencrypt/live/qbo.example.com/fullchain.pem",
        &dir.join("cert.pem").display().to_string(),
    );
    site = put(
        site,
        "/etc/letsencrypt/live/qbo.example.com/privkey.pem",
        &dir.join("key.pem").display().to_string(),
    );
    site = put(
        site,
        "server_name qbo.example.com;",
        "server_name localhost;",
    );
    std::fs::write(dir.join("site.conf"), site).unwrap();

    let d = dir.display();
    // One process (no master and workers), so killing it when the test ends leaves nothing
    // behind; the site file is what production runs.
    let main = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/site.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let conf = dir.join("nginx.conf");
    let child = Command::new(nginx_binary())
        .args(["-p", &d.to_string(), "-e", &format!("{d}/error.log"), "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start nginx");
    let nginx = Nginx {
        _child: child,
        base: format!("https://localhost:{port}"),
        port,
        cert: std::fs::read(dir.join("cert.pem")).unwrap(),
    };
    // Ready when it answers over TLS.
    let probe = nginx.client();
    let mut last = String::new();
    for _ in 0..600 {
        match probe.get(format!("{}/healthz", nginx.base)).send().await {
            Ok(r) if r.status() == StatusCode::OK => return nginx,
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    panic!(
        "nginx did not answer on {} within 30 s ({last}):\n{log}",
        nginx.base
    );
}

impl Nginx {
    /// A client that trusts only this test's certificate, reaches `localhost` at nginx, and
    /// connects from [`CLIENT_IP`]; with a cookie jar and no automatic redirects.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&self.cert).unwrap()])
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], self.port)))
            .local_address(CLIENT_IP)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .unwrap()
    }

    fn browser(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            client: self.client(),
            csrf: String::new(),
        }
    }
}

/// Every string in `v` that is a URL (starts with `http`), with where it was found.
fn urls(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) if s.starts_with("http") => out.push((at.to_owned(), s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                urls(item, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                urls(item, &format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// Fetches a metadata document through the proxy and checks every URL in it: https, on the
/// public URL, and answered by qbo-mcp through the proxy (not 404, not a proxy error).
async fn check_metadata(nginx: &Nginx, path: &str) -> Value {
    let http = nginx.client();
    let r = http
        .get(format!("{}{path}", nginx.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let doc: Value = r.json().await.unwrap();
    let mut found = Vec::new();
    urls(&doc, path, &mut found);
    assert!(!found.is_empty(), "{path}: {doc}");
    for (at, url) in found {
        assert!(
            url.starts_with(&format!("{}/", nginx.base)) || url == nginx.base,
            "{at} = {url} is not on the public https URL {}",
            nginx.base
        );
        let status = http.get(&url).send().await.unwrap().status();
        assert!(
            status != StatusCode::NOT_FOUND && !status.is_server_error(),
            "{at} = {url} answers {status} through the proxy"
        );
    }
    doc
}

/// The failed sign-in counters per address, as the replicas recorded them.
async fn address_buckets(test: &TestDb) -> Vec<(String, i64)> {
    let db = test.connect().await;
    let rows: Vec<(String, i64)> = qbo_mcp::on_db!(&db, pool => {
        sqlx::query_as(
            "SELECT bucket, failures FROM signin_failures WHERE bucket LIKE 'addr:%' ORDER BY bucket",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    db.close().await;
    rows
}

/// A failed sign-in as `username`, with forwarded headers naming [`SPOOFED`]; its status.
async fn spoofed_failure(http: &reqwest::Client, base: &str, username: &str) -> StatusCode {
    let page = http
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(format!("{base}/login"))
        .header("forwarded", format!("for={SPOOFED}"))
        .header("x-forwarded-for", SPOOFED)
        .form(&[
            ("username", username),
            ("password", "not the password at all"),
            ("csrf_token", &csrf_field(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_client_error() || r.status() == StatusCode::OK,
        "a wrong password: {}",
        r.status()
    );
    r.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_nginx_with_tls() {
    let test = TestDb::fresh(Backend::Postgres).await;
    let sim = simulator(consent_as(CRAIG)).await;
    let port = free_port();
    let public = format!("https://localhost:{port}");
    let replica = |header: &'static str| {
        TestServer::builder(&test)
            .env("QBO_MCP_PUBLIC_URL", &public)
            .env("QBO_MCP_TRUSTED_PROXIES", "127.0.0.1")
            .env("QBO_MCP_CLIENT_IP_HEADER", header)
            .env("QBO_MCP_INTUIT_CLIENT_ID", "qbo-mcp-proxy")
            .env("QBO_MCP_INTUIT_CLIENT_SECRET", "proxy-secret")
            .env("QBO_MCP_INTUIT_ENVIRONMENT", &sim.base_url())
            .process()
            .start()
    };
    // One replica reads RFC 7239's Forwarded, the other X-Forwarded-For: nginx sets both.
    let first = replica("forwarded").await;
    let second = replica("x-forwarded-for").await;
    let dir = tempfile::tempdir().unwrap();
    let nginx = start_nginx(dir.path(), port, &[&first, &second]).await;

    // HTTPS everywhere: HSTS on answers, and the first-run link on the public URL.
    let r = nginx
        .client()
        .get(format!("{public}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("strict-transport-security"));
    let line = first.wait_for_line("one-time link").await;
    let link = line.rsplit(' ').next().unwrap().to_owned();
    let path = link
        .strip_prefix(&public)
        .unwrap_or_else(|| panic!("the setup link {link} is not on {public}"))
        .to_owned();
    complete_setup(nginx.browser(), &path).await;

    // Sign-in through the proxy: every cookie is __Host- and Secure, and the session works on
    // both replicas (nginx alternates between them).
    let mut admin = nginx.browser();
    let r = admin
        .submit(
            "/login",
            "/login",
            &[("username", "root"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        session.iter().any(|c| c.starts_with("__Host-qbo_session=")),
        "{session:?}"
    );
    assert!(
        session
            .iter()
            .all(|c| c.starts_with("__Host-") && c.contains("; Secure")),
        "{session:?}"
    );
    admin.refresh_csrf().await;
    for _ in 0..4 {
        let me = admin.get("/api/v1/me").await;
        assert_eq!(me.status(), StatusCode::OK);
    }

    // OAuth discovery: every URL https on the public URL and answered through the proxy.
    let resource = check_metadata(&nginx, "/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(resource["resource"], format!("{public}/mcp"));
    for server in resource["authorization_servers"].as_array().unwrap() {
        let issuer = server.as_str().unwrap();
        let path = issuer.strip_prefix(&public).unwrap();
        let meta = check_metadata(
            &nginx,
            &format!("/.well-known/oauth-authorization-server{path}"),
        )
        .await;
        assert_eq!(meta["issuer"], issuer);
    }
    let challenge = nginx
        .client()
        .post(format!("{public}/mcp"))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let www = challenge.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        www.contains(&format!(
            "resource_metadata=\"{public}/.well-known/oauth-protected-resource"
        )),
        "{www}"
    );

    // The Intuit connect flow: Intuit is sent back to the public https callback, through nginx.
    connect_company(&admin).await;

    // An MCP tool call through the proxy.
    let token = personal_token(&test, "root").await;
    match call_tool(&nginx.client(), &public, &token, "query", count_customers()).await {
        Answer::Ok(v) => assert!(
            v["QueryResponse"]["totalCount"].as_i64().unwrap_or(0) > 0,
            "{v}"
        ),
        other => panic!("a tool call through nginx: {other:?}"),
    }

    // The sign-in limit counts the client nginx saw, on both replicas, never the address the
    // client wrote in Forwarded or X-Forwarded-For.
    let http = nginx.client();
    for _ in 0..4 {
        spoofed_failure(&http, &public, "root").await;
    }
    assert_eq!(
        address_buckets(&test).await,
        vec![(format!("addr:{CLIENT_IP}"), 4)]
    );
    // Straight to a replica, from an address it does not trust: the headers are not believed.
    let direct = reqwest::Client::builder()
        .local_address(CLIENT_IP)
        .cookie_store(true)
        .no_proxy()
        .build()
        .unwrap();
    spoofed_failure(&direct, &second.url, "root").await;
    assert_eq!(
        address_buckets(&test).await,
        vec![(format!("addr:{CLIENT_IP}"), 5)]
    );

    // Past the limit (10 per name in 15 minutes) the answer is 429, and the replicas count it
    // for the alert on signin_limited_total.
    assert_eq!(
        counter(&[&first, &second], "signin_limited_total").await,
        0.0
    );
    let mut limited = false;
    for _ in 0..8 {
        if spoofed_failure(&http, &public, "root").await == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "no 429 after 13 failed sign-ins");
    assert!(counter(&[&first, &second], "signin_limited_total").await >= 1.0);
}

/// The sum over `servers` of a counter in their `/metrics`.
async fn counter(servers: &[&TestServer], name: &str) -> f64 {
    let mut total = 0.0;
    for server in servers {
        let text = server
            .get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += text
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}
