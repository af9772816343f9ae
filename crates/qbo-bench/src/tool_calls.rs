//! `qbo-bench tool-calls`: what one MCP tool call through the gateway costs next to the same
//! read sent straight to QuickBooks. It starts an in-process simulator (Intuit's throttle
//! raised, so that only qbo-mcp's own pacing shapes the traffic), the real `qbo-mcp serve`
//! with a fresh database pointed at it, makes the first admin, connects the company through
//! Intuit's consent flow, and then, at a fixed rate, sends one `get_entity` of a Customer
//! through `/mcp` (personal access token) and one `GET /v3/company/{realm}/customer/{id}`
//! straight to the simulator (Intuit access token) per tick.
//!
//! It reports latency of both, the latency the gateway adds, the server's CPU per call (from
//! `/proc/PID/task/*/schedstat`, nanoseconds, so that a few hundred calls suffice), and with
//! `--count-statements` the SQL statements per call (the server logs every statement at
//! `sqlx::query=debug`; counted from its stderr — that run's CPU figures include the
//! logging) and, on PostgreSQL, committed transactions per call (`pg_stat_database`).
//! CPU and round trips are what load on a shared machine does not distort; the load average
//! is printed beside them.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use qbo_sim::Simulator;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::Mutex;

use crate::mcp::{self, percentile};

/// Options of `tool-calls`.
#[derive(Debug, clap::Args)]
pub struct ToolCalls {
    /// How long to measure each backend, in seconds (after a two-second warm-up).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Tool calls per second (and as many direct reads). Intuit allows 8 a second per company
    /// (500 a minute); below that, qbo-mcp's pacing never queues.
    #[arg(long, default_value_t = 6.0)]
    rate: f64,
    /// Most tool calls in flight at once.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    #[command(flatten)]
    servers: mcp::Servers,
    /// Count the SQL statements (and PostgreSQL commits) per call; the server then logs every
    /// statement, so CPU figures of such a run are not comparable.
    #[arg(long)]
    count_statements: bool,
    /// Instead of one customer, a team's mix of reads ([`team_call`]: customers, the usual
    /// queries, reports, company info), without the direct reads; prints QuickBooks requests
    /// per 1,000 tool calls (identical reads in flight at once share one request).
    #[arg(long)]
    team: bool,
    /// How long the simulator takes to answer each request, in milliseconds (Intuit's own
    /// answers take a few hundred).
    #[arg(long, default_value_t = 0)]
    sim_latency_ms: u64,
    /// Companies the calls are spread over. Above 1, the firm-scale run: the simulator keeps
    /// Intuit's limits, calls go to each company's customers in turn, no direct reads; it
    /// reports throughput, QuickBooks' 429s and the audit entries written, and fails when a
    /// call was throttled or not audited (docs/benchmarks.md, "A firm's scale").
    #[arg(long, default_value_t = 1)]
    companies: usize,
}

/// Tool call `n` of a bookkeeping team's working day, as `(tool, arguments)`: a third are
/// customers (the first few much more often than the rest), a quarter the queries everyone
/// runs (open and overdue invoices, the customer list, recent bills), a fifth reports
/// (this and last month's profit and loss, the balance sheet, receivables ageing), the rest
/// company info and accounts. Deterministic, so runs compare.
pub fn team_call(n: u64) -> (&'static str, Value) {
    // xorshift of the call number: a fixed sequence that looks random.
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let pick = x % 100;
    let u = ((x >> 8) % 1000) as f64 / 1000.0;
    match pick {
        0..=32 => {
            // Customers 1..=29, skewed towards the first ones.
            let id = 1 + (u * u * 29.0) as u64;
            (
                "get_entity",
                json!({"entity": "Customer", "id": id.to_string()}),
            )
        }
        33..=57 => {
            let queries = [
                "SELECT * FROM Invoice WHERE Balance > '0'",
                "SELECT * FROM Invoice WHERE DueDate < '2026-11-01' AND Balance > '0'",
                "SELECT * FROM Customer WHERE Active = true",
                "SELECT * FROM Bill ORDERBY TxnDate DESC MAXRESULTS 20",
                "SELECT COUNT(*) FROM Invoice",
            ];
            (
                "query",
                json!({"query": queries[(u * queries.len() as f64) as usize]}),
            )
        }
        58..=77 => {
            let reports = [
                json!({"report": "ProfitAndLoss", "start_date": "2026-11-01", "end_date": "2026-11-30"}),
                json!({"report": "ProfitAndLoss", "start_date": "2026-10-01", "end_date": "2026-10-31"}),
                json!({"report": "BalanceSheet"}),
                json!({"report": "AgedReceivables"}),
            ];
            (
                "run_report",
                reports[(u * reports.len() as f64) as usize].clone(),
            )
        }
        78..=89 => ("get_company_info", json!({})),
        _ => (
            "query",
            json!({"query": "SELECT * FROM Account WHERE Active = true"}),
        ),
    }
}

const ADMIN: &str = "craig@craigsdesign.example";

struct Measured {
    backend: String,
    calls: u64,
    errors: u64,
    gateway_us: Vec<u32>,
    direct_us: Vec<u32>,
    server_cpu_ns: Option<u64>,
    /// Context switches of the server's threads during the window (voluntary and not).
    server_switches: Option<u64>,
    /// Server CPU per second while idle, before the calls.
    idle_cpu_ns: Option<u64>,
    /// Requests the simulator served during the window, direct reads included.
    upstream: i64,
    /// The server's audit commits and the entries in them, during the window.
    audit_commits: f64,
    audit_entries: f64,
    statements: Option<u64>,
    commits: Option<i64>,
    load: String,
}

pub fn run(args: ToolCalls) -> anyhow::Result<()> {
    if args.seconds == 0
        || args.seconds > 600
        || args.concurrency == 0
        || args.concurrency > 10_000
        || args.companies == 0
        || args.companies > 5_000
        || !(0.1..=10_000.0).contains(&args.rate)
    {
        bail!(
            "--seconds must be 1..=600, --concurrency 1..=10000, --companies 1..=5000 and --rate 0.1..=10000"
        );
    }
    if args.companies > 1 {
        if args.count_statements {
            bail!("--count-statements is for the one-company run");
        }
        let mut broken = Vec::new();
        crate::scale::throughput(
            &crate::scale::Throughput {
                companies: args.companies,
                rate: args.rate,
                concurrency: args.concurrency,
                seconds: args.seconds,
            },
            &args.servers,
            &mut broken,
        )?;
        return crate::scale::verdict(broken);
    }
    let server = mcp::server_binary(args.servers.server.as_ref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for backend in &args.servers.backends {
        results.push(runtime.block_on(measure(&args, &server, backend))?);
    }
    print_results(&results, &args);
    Ok(())
}

/// Context switches of every live thread of a process, voluntary and involuntary: on this kind
/// of machine each one (with the wake-up behind it) costs tens of microseconds, so their count
/// per call says more about a lone call's CPU than any one function in a profile.
pub(crate) fn threads_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("status");
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines() {
                if let Some(n) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    total += n.trim().parse::<u64>().ok()?;
                }
            }
        }
    }
    Some(total)
}

/// CPU time of every live thread of a process, in nanoseconds.
pub(crate) fn threads_cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn pg_commits(url: &str, name: &str) -> Option<i64> {
    let out = tokio::process::Command::new("psql")
        .args([
            url,
            "-qtA",
            "-c",
            &format!("SELECT xact_commit FROM pg_stat_database WHERE datname = '{name}'"),
        ])
        .output()
        .await
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Connects the simulator's company through the admin's session, as the Companies page does.
pub(crate) async fn connect_company(base: &str, admin: &mcp::Admin) -> anyhow::Result<()> {
    let started: Value = admin
        .http
        .post(format!("{base}/api/v1/companies/connect"))
        .header("x-csrf-token", &admin.csrf)
        .send()
        .await?
        .json()
        .await?;
    let authorize = started["authorize_url"]
        .as_str()
        .with_context(|| format!("no authorize_url: {started}"))?;
    let consent = admin.http.get(authorize).send().await?;
    let callback = consent
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .context("the simulator's consent did not redirect")?
        .to_owned();
    let done = admin.http.get(&callback).send().await?;
    if done.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("the connect callback answered {}", done.status());
    }
    Ok(())
}

type Pool = Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>;

/// The server's audit commits and the entries they committed so far (its `/metrics`;
/// zeros for a server that does not count them).
async fn audit_commits(http: &reqwest::Client, base: &str) -> (f64, f64) {
    let text = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let counter = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        counter("audit_commits_total "),
        counter("audit_entries_total "),
    )
}

/// Accounting API requests the simulator has served so far.
fn upstream(sim: &Simulator) -> i64 {
    sim.stats()["api_requests"].as_i64().unwrap_or(0)
}

async fn checkout(pool: &Pool, address: std::net::SocketAddr) -> Option<SendRequest<Full<Bytes>>> {
    if let Some(c) = pool.lock().await.pop() {
        return Some(c);
    }
    mcp::connect(address).await.ok()
}

/// Sends one request; the answer's body when it was a 200.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> Option<Bytes> {
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    Some(response.into_body().collect().await.ok()?.to_bytes())
}

async fn measure(args: &ToolCalls, server: &Path, backend: &str) -> anyhow::Result<Measured> {
    let mut sim_config = crate::sim::unthrottled(ADMIN);
    sim_config.latency_ms = args.sim_latency_ms;
    let sim = Simulator::start(sim_config, "127.0.0.1:0".parse()?).await?;
    let dir =
        std::env::temp_dir().join(format!("qbo-bench-tools-{}-{backend}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (database_url, pg_name) =
        mcp::fresh_database(&args.servers.postgres, backend, &dir).await?;
    let log = if args.count_statements {
        "warn,sqlx::query=debug"
    } else {
        "warn"
    };
    let mut child = tokio::process::Command::new(server)
        .arg("serve")
        .env("QBO_MCP_DATABASE_URL", &database_url)
        .env("QBO_MCP_DATA_DIR", dir.display().to_string())
        .env("QBO_MCP_SECRET_KEY", mcp::KEY)
        .env("QBO_MCP_LISTEN", "127.0.0.1:0")
        .env("QBO_MCP_LOG", log)
        .env("QBO_MCP_INTUIT_CLIENT_ID", "qbo-bench")
        .env("QBO_MCP_INTUIT_CLIENT_SECRET", "bench-secret")
        .env("QBO_MCP_INTUIT_ENVIRONMENT", sim.base_url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if args.count_statements {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .kill_on_drop(true)
        .spawn()?;
    let statements = Arc::new(AtomicU64::new(0));
    if let Some(stderr) = child.stderr.take() {
        let counter = statements.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("sqlx::query") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let (address, setup_link) = mcp::listening(&mut child).await?;
    let pid = child.id().context("server pid")?;
    let base = format!("http://{address}");
    let admin = mcp::signed_in_admin(&base, &setup_link).await?;
    connect_company(&base, &admin).await?;

    // The direct side: the simulator's company with an Intuit access token of its own.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (intuit_token, realm) = crate::sim::access_token(&plain, &sim.base_url()).await?;
    let customers: Value = plain
        .get(format!("{}/v3/company/{realm}/query", sim.base_url()))
        .query(&[("query", "SELECT Id FROM Customer MAXRESULTS 1")])
        .bearer_auth(&intuit_token)
        .send()
        .await?
        .json()
        .await?;
    let id = customers["QueryResponse"]["Customer"][0]["Id"]
        .as_str()
        .context("no customer in the simulator")?
        .to_owned();

    let call_body = Bytes::from(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "get_entity", "arguments": {"entity": "Customer", "id": id}}})
        .to_string(),
    );
    let team = args.team;
    let mcp_request = {
        let (host, token) = (address.to_string(), admin.token.clone());
        move |n: u64| {
            let body = if team {
                let (name, arguments) = team_call(n);
                Bytes::from(
                    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": name, "arguments": arguments}})
                    .to_string(),
                )
            } else {
                call_body.clone()
            };
            hyper::Request::post("/mcp")
                .header(hyper::header::HOST, &host)
                .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::ACCEPT, "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .body(Full::new(body))
        }
    };
    let sim_address = sim.local_addr();
    let direct_request = {
        let (host, path) = (
            sim_address.to_string(),
            format!("/v3/company/{realm}/customer/{id}?minorversion=75"),
        );
        move || {
            hyper::Request::get(path.as_str())
                .header(hyper::header::HOST, &host)
                .header(
                    hyper::header::AUTHORIZATION,
                    format!("Bearer {intuit_token}"),
                )
                .header(hyper::header::ACCEPT, "application/json")
                .body(Full::new(Bytes::new()))
        }
    };
    let tool_ok = move |body: &Bytes| {
        (team || body.windows(8).any(|w| w == b"Customer"))
            && body.windows(8).any(|w| w == b"\"result\"")
            && !body.windows(14).any(|w| w == b"\"isError\":true")
    };
    // One call first: it must answer with the customer.
    let mut probe = mcp::connect(address).await?;
    match send(&mut probe, mcp_request(0)?).await {
        Some(body) if tool_ok(&body) => {}
        other => bail!(
            "get_entity through the server did not answer with the customer: {:?}",
            other.map(|b| String::from_utf8_lossy(&b).into_owned())
        ),
    }

    if let Some(name) = &pg_name {
        // pg_stat_database lags up to 10 s behind idle backends.
        tokio::time::sleep(Duration::from_secs(11)).await;
        let _ = name;
    }
    // What the server spends doing nothing (timers, pool upkeep), over 5 s.
    let idle_from = threads_cpu_ns(pid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu_ns = threads_cpu_ns(pid)
        .zip(idle_from)
        .map(|(b, a)| b.saturating_sub(a) / 5);
    let warm_up = Duration::from_secs(2);
    let window = Duration::from_secs(args.seconds);
    let gateway_pool: Pool = Arc::new(Mutex::new(vec![probe]));
    let direct_pool: Pool = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let gateway_us = Arc::new(std::sync::Mutex::new(Vec::new()));
    let direct_us = Arc::new(std::sync::Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let counted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let mut tasks = Vec::new();
    let mut marks = None;
    let mut sent_calls = 0u64;
    while start.elapsed() < warm_up + window {
        ticker.tick().await;
        sent_calls += 1;
        let measuring = start.elapsed() >= warm_up;
        if measuring && marks.is_none() {
            let commits = match &pg_name {
                Some(name) => pg_commits(&args.servers.postgres, name).await,
                None => None,
            };
            marks = Some((
                (threads_cpu_ns(pid), threads_switches(pid)),
                statements.load(Ordering::Relaxed),
                commits,
                upstream(&sim),
                audit_commits(&plain, &base).await,
            ));
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let (pool, request, latencies, errors, counted) = (
            gateway_pool.clone(),
            mcp_request(sent_calls)?,
            gateway_us.clone(),
            errors.clone(),
            counted.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let Some(mut sender) = checkout(&pool, address).await else {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let sent = Instant::now();
            match send(&mut sender, request).await {
                Some(body) if tool_ok(&body) => {
                    if measuring {
                        counted.fetch_add(1, Ordering::Relaxed);
                        let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                        latencies.lock().unwrap_or_else(|p| p.into_inner()).push(us);
                    }
                    pool.lock().await.push(sender);
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        if team {
            continue;
        }
        let (pool, request, latencies) =
            (direct_pool.clone(), direct_request()?, direct_us.clone());
        tasks.push(tokio::spawn(async move {
            let Some(mut sender) = checkout(&pool, sim_address).await else {
                return;
            };
            let sent = Instant::now();
            if send(&mut sender, request).await.is_some() {
                if measuring {
                    let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                    latencies.lock().unwrap_or_else(|p| p.into_inner()).push(us);
                }
                pool.lock().await.push(sender);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let (
        (cpu_before, switches_before),
        statements_before,
        commits_before,
        upstream_before,
        audit_before,
    ) = marks.unwrap_or(((None, None), 0, None, 0, (0.0, 0.0)));
    let audit_after = audit_commits(&plain, &base).await;
    let cpu_after = threads_cpu_ns(pid);
    let switches_after = threads_switches(pid);
    let upstream_during = upstream(&sim) - upstream_before;
    let statements_after = statements.load(Ordering::Relaxed);
    let commits = match &pg_name {
        Some(name) => {
            tokio::time::sleep(Duration::from_secs(11)).await;
            match (
                commits_before,
                pg_commits(&args.servers.postgres, name).await,
            ) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            }
        }
        None => None,
    };
    let load = load_average();
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(name) = pg_name {
        mcp::psql(
            &args.servers.postgres,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
    }
    let mut gateway_us = std::mem::take(&mut *gateway_us.lock().unwrap_or_else(|p| p.into_inner()));
    let mut direct_us = std::mem::take(&mut *direct_us.lock().unwrap_or_else(|p| p.into_inner()));
    gateway_us.sort_unstable();
    direct_us.sort_unstable();
    Ok(Measured {
        backend: backend.to_owned(),
        calls: counted.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        gateway_us,
        direct_us,
        server_cpu_ns: match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        server_switches: match (switches_before, switches_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        idle_cpu_ns,
        upstream: upstream_during,
        audit_commits: audit_after.0 - audit_before.0,
        audit_entries: audit_after.1 - audit_before.1,
        statements: args
            .count_statements
            .then(|| statements_after - statements_before),
        commits,
        load,
    })
}

fn print_results(results: &[Measured], args: &ToolCalls) {
    println!(
        "qbo-bench tool-calls: get_entity Customer through /mcp vs straight to the simulator, {}/s, at most {} in flight, {} s",
        args.rate, args.concurrency, args.seconds
    );
    println!(
        "{:<9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>11} {:>15} {:>11} {:>10} {:>9} {:>13} {:>14}  load",
        "backend",
        "calls",
        "errors",
        "gw p50",
        "gw p99",
        "dir p50",
        "dir p99",
        "added p50",
        "added p99",
        "cpu µs/call",
        "switches/call",
        "idle µs/s",
        "stmts/call",
        "tx/call",
        "QBO req/1000",
        "audit commits"
    );
    let mut rows = Vec::new();
    for r in results {
        let calls = r.calls.max(1) as f64;
        let (gp50, gp99) = (
            percentile(&r.gateway_us, 0.5),
            percentile(&r.gateway_us, 0.99),
        );
        let (dp50, dp99) = (
            percentile(&r.direct_us, 0.5),
            percentile(&r.direct_us, 0.99),
        );
        let cpu_us = r.server_cpu_ns.map(|ns| ns as f64 / 1000.0 / calls);
        let switches = r.server_switches.map(|n| n as f64 / calls);
        let idle_us = r.idle_cpu_ns.map(|ns| ns as f64 / 1000.0);
        let statements = r.statements.map(|s| s as f64 / calls);
        let commits = r.commits.map(|c| c as f64 / calls);
        // The simulator's requests for the tool calls: all of them in a team run, which sends
        // no direct reads; otherwise less one per direct read.
        let gateway_upstream = r.upstream - r.direct_us.len() as i64;
        let upstream_per_1000 = gateway_upstream as f64 * 1000.0 / calls;
        let shown = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        println!(
            "{:<9} {:>6} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>10.2} {:>11} {:>15} {:>11} {:>10} {:>9} {:>13.0} {:>14}  {}",
            r.backend,
            r.calls,
            r.errors,
            gp50,
            gp99,
            dp50,
            dp99,
            gp50 - dp50,
            gp99 - dp99,
            shown(cpu_us, 0),
            shown(switches, 1),
            shown(idle_us, 0),
            shown(statements, 1),
            shown(commits, 2),
            upstream_per_1000,
            format!("{:.0}/{:.0}", r.audit_commits, r.audit_entries),
            r.load
        );
        rows.push(json!({
            "backend": r.backend,
            "calls": r.calls,
            "errors": r.errors,
            "gateway_p50_ms": gp50,
            "gateway_p99_ms": gp99,
            "direct_p50_ms": dp50,
            "direct_p99_ms": dp99,
            "server_cpu_us_per_call": cpu_us.map(f64::round),
            "server_context_switches_per_call": switches,
            "server_idle_cpu_us_per_second": idle_us.map(f64::round),
            "statements_per_call": statements,
            "commits_per_call": commits,
            "upstream_requests_per_1000_calls": upstream_per_1000.round(),
            "audit_commits": r.audit_commits,
            "audit_entries": r.audit_entries,
            "audit_entries_per_commit": (r.audit_commits > 0.0).then(|| r.audit_entries / r.audit_commits),
            "load_average": r.load,
        }));
    }
    println!(
        "{}",
        json!({
            "benchmark": "tool-calls",
            "rate": args.rate,
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "count_statements": args.count_statements,
            "team": args.team,
            "sim_latency_ms": args.sim_latency_ms,
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "results": rows,
        })
    );
}
