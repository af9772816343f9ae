//! `qbo-bench mcp-tools-list`: how many MCP `tools/list` requests per second the real
//! `qbo-mcp serve` answers to concurrent keep-alive clients, each request authenticated by a
//! bearer token (token lookup and person check on every request, nothing cached), on SQLite and
//! on PostgreSQL. The server is the release/debug binary next to this one, on 127.0.0.1:0 with a
//! fresh database; the first admin and their personal access token are made over HTTP, through
//! the setup link and `POST /api/v1/tokens`.
//! Everything stops by itself when the window ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// Options of `mcp-tools-list`.
#[derive(Debug, clap::Args)]
pub struct McpToolsList {
    /// How long to measure each backend, in seconds (after a two-second warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    #[command(flatten)]
    pub servers: Servers,
}

/// Which servers a gateway benchmark starts: the backends, where PostgreSQL is, which binary.
#[derive(Debug, clap::Args)]
pub struct Servers {
    /// Backends to measure: `sqlite`, `postgres`, or both.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    /// A PostgreSQL server where a fresh database may be created (and dropped afterwards).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres: String,
    /// The `qbo-mcp` binary (default: the one next to this program).
    #[arg(long)]
    pub server: Option<PathBuf>,
}

/// The secret key every benchmark server gets.
pub const KEY: &str = "YmVuY2gta2V5LWZvci1xYm8tbWNwLWJlbmNobWFya3M=";
const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;

struct Measured {
    backend: String,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    server_cpu_seconds: Option<f64>,
    /// CPU used by this program (the clients) over the same window.
    client_cpu_seconds: Option<f64>,
}

pub fn run(args: McpToolsList) -> anyhow::Result<()> {
    if args.seconds == 0 || args.seconds > 600 || args.concurrency == 0 || args.concurrency > 1024 {
        bail!("--seconds must be 1..=600 and --concurrency 1..=1024");
    }
    let server = server_binary(args.servers.server.as_ref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for backend in &args.servers.backends {
        let measured = runtime.block_on(measure_backend(&args, &server, backend))?;
        results.push(measured);
    }
    print_results(&results, &args);
    Ok(())
}

/// The `qbo-mcp` binary: `given`, or the one next to this program.
pub(crate) fn server_binary(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    let server = match given {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory for this program")?
            .join("qbo-mcp"),
    };
    if !server.exists() {
        bail!(
            "{} does not exist: build it first (`cargo build --release -p qbo-mcp`) or pass --server",
            server.display()
        );
    }
    Ok(server)
}

/// A fresh database for one run: (database URL, data directory, PostgreSQL database to drop).
pub(crate) async fn fresh_database(
    postgres: &str,
    backend: &str,
    dir: &Path,
) -> anyhow::Result<(String, Option<String>)> {
    match backend {
        "sqlite" => Ok((format!("sqlite://{}/qbo-mcp.db", dir.display()), None)),
        "postgres" => {
            let name = format!("qbo_bench_{}", std::process::id());
            psql(postgres, &format!("DROP DATABASE IF EXISTS {name}")).await?;
            psql(postgres, &format!("CREATE DATABASE {name}")).await?;
            let mut url = url::Url::parse(postgres)?;
            url.set_path(&format!("/{name}"));
            Ok((url.to_string(), Some(name)))
        }
        other => bail!("unknown backend `{other}`; use sqlite or postgres"),
    }
}

pub(crate) async fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("psql")
        .args([url, "-q", "-c", sql])
        .output()
        .await
        .context("psql is needed for the PostgreSQL run")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Creates the first admin through the one-time setup link the server printed, and a
/// personal access token for them through the JSON API (what a person would do).
async fn person_and_token(base: &str, setup_link: &str) -> anyhow::Result<String> {
    Ok(signed_in_admin(base, setup_link).await?.token)
}

/// The first admin, signed in: their browser session (cookies), its CSRF token, and a
/// personal access token.
pub(crate) struct Admin {
    pub http: reqwest::Client,
    pub csrf: String,
    pub token: String,
}

pub(crate) async fn signed_in_admin(base: &str, setup_link: &str) -> anyhow::Result<Admin> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = http.get(setup_link).send().await?.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = page
        .find(marker)
        .context("no CSRF field on the setup page")?
        + marker.len();
    let csrf = page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned();
    let r = http
        .post(setup_link)
        .form(&[
            ("username", "bench"),
            ("email", "bench@example.com"),
            ("password", "a long bench password 1"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await?;
    if r.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("first-run setup answered {}", r.status());
    }
    let me: Value = http
        .get(format!("{base}/api/v1/me"))
        .send()
        .await?
        .json()
        .await?;
    let csrf = me["csrf_token"].as_str().unwrap_or_default().to_owned();
    let created: Value = http
        .post(format!("{base}/api/v1/tokens"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let token = created["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in the answer of POST /api/v1/tokens")?;
    Ok(Admin { http, csrf, token })
}

async fn measure_backend(
    args: &McpToolsList,
    server: &Path,
    backend: &str,
) -> anyhow::Result<Measured> {
    let dir = std::env::temp_dir().join(format!("qbo-bench-mcp-{}-{backend}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (database_url, pg_name) = fresh_database(&args.servers.postgres, backend, &dir).await?;
    let env = [
        ("QBO_MCP_DATABASE_URL".to_owned(), database_url),
        ("QBO_MCP_DATA_DIR".to_owned(), dir.display().to_string()),
        ("QBO_MCP_SECRET_KEY".to_owned(), KEY.to_owned()),
        ("QBO_MCP_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("QBO_MCP_LOG".to_owned(), "warn".to_owned()),
    ];
    let mut child = tokio::process::Command::new(server)
        .arg("serve")
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let (address, setup_link) = listening(&mut child).await?;
    let pid = child.id().context("server pid")?;
    let token = person_and_token(&format!("http://{address}"), &setup_link).await?;

    // One request first: the answer must be the tool list.
    let mut probe = connect(address).await?;
    let first = tools_list(
        &mut probe,
        &RequestHeaders::new(&address.to_string(), &token)?,
    )
    .await;
    if !first {
        bail!("tools/list through the server did not answer 200 with tools");
    }

    let warm_up = Duration::from_secs(2);
    let window = Duration::from_secs(args.seconds);
    let start = Instant::now();
    let cpu_probe = tokio::spawn(async move {
        let me = std::process::id();
        tokio::time::sleep(warm_up).await;
        let first = (process_cpu_seconds(pid), process_cpu_seconds(me));
        tokio::time::sleep(window).await;
        let server = Some(process_cpu_seconds(pid)? - first.0?);
        let clients = Some(process_cpu_seconds(me)? - first.1?);
        Some((server, clients))
    });
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let headers = RequestHeaders::new(&address.to_string(), &token)?;
        workers.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut latencies) = (0u64, 0u64, Vec::with_capacity(1 << 14));
            let mut connection = connect(address).await.ok();
            while start.elapsed() < warm_up + window {
                let Some(sender) = connection.as_mut() else {
                    errors += 1;
                    connection = connect(address).await.ok();
                    continue;
                };
                let sent = Instant::now();
                let good = tools_list(sender, &headers).await;
                if !good {
                    connection = None;
                }
                if start.elapsed() < warm_up {
                    continue;
                }
                if good {
                    ok += 1;
                    latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    errors += 1;
                }
            }
            (ok, errors, latencies)
        }));
    }
    let mut measured = Measured {
        backend: backend.to_owned(),
        requests: 0,
        errors: 0,
        elapsed: window,
        latencies_us: Vec::new(),
        server_cpu_seconds: None,
        client_cpu_seconds: None,
    };
    for worker in workers {
        let (ok, errors, latencies) = worker.await?;
        measured.requests += ok;
        measured.errors += errors;
        measured.latencies_us.extend(latencies);
    }
    if let Some((server, clients)) = cpu_probe.await? {
        measured.server_cpu_seconds = server;
        measured.client_cpu_seconds = clients;
    }
    measured.latencies_us.sort_unstable();
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(name) = pg_name {
        psql(
            &args.servers.postgres,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
    }
    Ok(measured)
}

/// Waits for a started `qbo-mcp serve` to say where it listens and print its setup link.
pub(crate) async fn listening(
    child: &mut tokio::process::Child,
) -> anyhow::Result<(std::net::SocketAddr, String)> {
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("the server did not start within 60 s")??
        .context("the server exited")?;
    let setup = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("no setup link within 60 s")??
        .context("the server exited")?;
    let setup_link = setup.rsplit(' ').next().unwrap_or_default().to_owned();
    let address: std::net::SocketAddr = first
        .strip_prefix("qbo-mcp listening on http://")
        .context("unexpected first line")?
        .trim()
        .parse()?;
    Ok((address, setup_link))
}

/// CPU time (user + system) of a process, in seconds.
pub(crate) fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

pub(crate) async fn connect(
    address: std::net::SocketAddr,
) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// The headers of every request, parsed once so that the clients spend their CPU on sending.
struct RequestHeaders {
    host: HeaderValue,
    authorization: HeaderValue,
}

impl RequestHeaders {
    fn new(host: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            host: HeaderValue::from_str(host)?,
            authorization: HeaderValue::from_str(&format!("Bearer {token}"))?,
        })
    }
}

/// One `tools/list`; true when it was a 200 whose body lists tools.
async fn tools_list(sender: &mut SendRequest<Full<Bytes>>, headers: &RequestHeaders) -> bool {
    if sender.ready().await.is_err() {
        return false;
    }
    let Ok(request) = hyper::Request::post("/mcp")
        .header(hyper::header::HOST, headers.host.clone())
        .header(hyper::header::AUTHORIZATION, headers.authorization.clone())
        .header(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .header(
            hyper::header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        )
        .header(
            "mcp-protocol-version",
            HeaderValue::from_static("2025-11-25"),
        )
        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
    else {
        return false;
    };
    match sender.send_request(request).await {
        Ok(response) if response.status().is_success() => {
            match response.into_body().collect().await {
                Ok(body) => {
                    let body = body.to_bytes();
                    body.windows(7).any(|w| w == b"\"tools\"")
                }
                Err(_) => false,
            }
        }
        _ => false,
    }
}

pub(crate) fn percentile(sorted: &[u32], share: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    f64::from(sorted[index.min(sorted.len() - 1)]) / 1000.0
}

fn print_results(results: &[Measured], args: &McpToolsList) {
    println!(
        "qbo-bench mcp-tools-list: POST /mcp tools/list with a bearer token, {} keep-alive clients, 127.0.0.1",
        args.concurrency
    );
    println!(
        "{:<9} {:>10} {:>7} {:>10} {:>9} {:>9} {:>13} {:>13}",
        "backend",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server cpu s",
        "client cpu s"
    );
    let mut rows = Vec::new();
    for r in results {
        let throughput = r.requests as f64 / r.elapsed.as_secs_f64();
        let p50 = percentile(&r.latencies_us, 0.50);
        let p99 = percentile(&r.latencies_us, 0.99);
        println!(
            "{:<9} {:>10} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>13.2} {:>13.2}",
            r.backend,
            r.requests,
            r.errors,
            throughput,
            p50,
            p99,
            r.server_cpu_seconds.unwrap_or(0.0),
            r.client_cpu_seconds.unwrap_or(0.0)
        );
        rows.push(json!({
            "backend": r.backend,
            "requests": r.requests,
            "errors": r.errors,
            "requests_per_second": throughput.round(),
            "p50_ms": p50,
            "p99_ms": p99,
            "server_cpu_seconds": r.server_cpu_seconds,
            "client_cpu_seconds": r.client_cpu_seconds,
        }));
    }
    let summary: Value = json!({
        "benchmark": "mcp-tools-list",
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "results": rows,
    });
    println!("{summary}");
}
