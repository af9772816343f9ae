//! What the firm-scale benchmarks start (docs/benchmarks.md, "A firm's scale"): an in-process
//! simulator with N demo companies at Intuit's own limits, a fresh database (SQLite file or a
//! new PostgreSQL database, dropped afterwards), one or more real `qbo-mcp serve` processes on
//! it, the first admin with a personal access token, and every company connected through
//! Intuit's consent flow as that company's own QuickBooks admin. Then a pool of keep-alive
//! connections that sends `tools/call` to the servers in turn, and what the benchmarks read
//! back: the simulator's counters, the audit log's row count, each server's CPU and RSS.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use qbo_sim::books::UserRole;
use qbo_sim::{AutoConsent, SimConfig, Simulator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::mcp;

/// What to start.
#[derive(Debug, Clone)]
pub struct RigOptions {
    pub backend: String,
    pub companies: usize,
    pub replicas: usize,
    pub postgres: String,
    pub server: PathBuf,
    /// Changes to the simulator's configuration (Intuit's limits stay unless changed here).
    pub sim: SimConfig,
}

/// One running `qbo-mcp serve`.
pub struct Server {
    pub child: tokio::process::Child,
    pub address: std::net::SocketAddr,
    pub pid: u32,
}

/// Everything started, until dropped (servers are killed, the database dropped by `stop`).
pub struct Rig {
    pub sim: Simulator,
    pub servers: Vec<Server>,
    pub admin: mcp::Admin,
    /// Connected companies: realm id and the ids of its customers.
    pub companies: Vec<(String, Vec<String>)>,
    pub database_url: String,
    pub backend: String,
    env: Vec<(String, String)>,
    server_binary: PathBuf,
    pg_name: Option<String>,
    postgres: String,
    dir: PathBuf,
}

/// Intuit's limits (500 requests a minute, 10 in flight per company), no auto-consent.
pub fn intuit_limits(companies: usize) -> SimConfig {
    SimConfig {
        companies,
        ..SimConfig::default()
    }
}

impl Rig {
    pub async fn start(options: &RigOptions) -> anyhow::Result<Rig> {
        if options.replicas > 1 && options.backend == "sqlite" {
            bail!("several replicas need PostgreSQL (--backend postgres)");
        }
        let mut config = options.sim.clone();
        config.companies = options.companies.max(1);
        let sim = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
        let dir = std::env::temp_dir().join(format!(
            "qbo-bench-rig-{}-{}-{}",
            std::process::id(),
            options.backend,
            RIGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let (database_url, pg_name) =
            mcp::fresh_database(&options.postgres, &options.backend, &dir).await?;
        let env = vec![
            ("QBO_MCP_DATABASE_URL".to_owned(), database_url.clone()),
            ("QBO_MCP_DATA_DIR".to_owned(), dir.display().to_string()),
            ("QBO_MCP_SECRET_KEY".to_owned(), mcp::KEY.to_owned()),
            ("QBO_MCP_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("QBO_MCP_LOG".to_owned(), "error".to_owned()),
            (
                "QBO_MCP_INTUIT_CLIENT_ID".to_owned(),
                "qbo-bench".to_owned(),
            ),
            (
                "QBO_MCP_INTUIT_CLIENT_SECRET".to_owned(),
                "bench-secret".to_owned(),
            ),
            ("QBO_MCP_INTUIT_ENVIRONMENT".to_owned(), sim.base_url()),
            // The authorization storm gives each person an address of their own.
            (
                "QBO_MCP_TRUSTED_PROXIES".to_owned(),
                "127.0.0.1/32".to_owned(),
            ),
        ];
        let mut rig = Rig {
            sim,
            servers: Vec::new(),
            admin: mcp::Admin {
                http: reqwest::Client::new(),
                csrf: String::new(),
                token: String::new(),
            },
            companies: Vec::new(),
            database_url,
            backend: options.backend.clone(),
            env,
            server_binary: options.server.clone(),
            pg_name,
            postgres: options.postgres.clone(),
            dir,
        };
        let (first, setup_link) = rig.spawn(true).await?;
        let base = format!("http://{}", first.address);
        rig.servers.push(first);
        rig.admin = mcp::signed_in_admin(&base, &setup_link.unwrap_or_default()).await?;
        for _ in 1..options.replicas {
            let (server, _) = rig.spawn(false).await?;
            rig.servers.push(server);
        }
        rig.connect_companies(options.companies).await?;
        Ok(rig)
    }

    /// Starts one more `qbo-mcp serve` on the rig's database; with `setup`, waits for the
    /// first-admin link too.
    pub async fn spawn(&self, setup: bool) -> anyhow::Result<(Server, Option<String>)> {
        let mut child = tokio::process::Command::new(&self.server_binary)
            .arg("serve")
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.server_binary.display()))?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut next = async || -> anyhow::Result<String> {
            tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .context("the server did not start within 60 s")??
                .context("the server exited")
        };
        let first = next().await?;
        let address: std::net::SocketAddr = first
            .strip_prefix("qbo-mcp listening on http://")
            .with_context(|| format!("unexpected first line `{first}`"))?
            .trim()
            .parse()?;
        let setup_link = if setup {
            Some(
                next()
                    .await?
                    .rsplit(' ')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            )
        } else {
            None
        };
        // Keep reading stdout, so that the server never writes into a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id().context("server pid")?;
        Ok((
            Server {
                child,
                address,
                pid,
            },
            setup_link,
        ))
    }

    /// Connects the simulator's companies one by one, each approved by its own admin.
    async fn connect_companies(&mut self, count: usize) -> anyhow::Result<()> {
        let base = format!("http://{}", self.servers[0].address);
        let state = self.sim.state();
        let roster = state.companies();
        for company in roster.iter().take(count) {
            let admin = company
                .user_list()
                .into_iter()
                .find(|u| u.role == UserRole::Admin)
                .context("a demo company without an admin")?;
            state.config.write().auto_consent = Some(AutoConsent {
                email: admin.email.clone(),
                realm_id: Some(company.realm_id.clone()),
            });
            crate::tool_calls::connect_company(&base, &self.admin)
                .await
                .with_context(|| format!("connecting {}", company.realm_id))?;
            let customers: Vec<String> = company
                .books
                .read()
                .all_named("Customer")
                .filter_map(|c| c["Id"].as_str().map(str::to_owned))
                .collect();
            if customers.is_empty() {
                bail!("company {} has no customers", company.realm_id);
            }
            self.companies.push((company.realm_id.clone(), customers));
        }
        state.config.write().auto_consent = None;
        Ok(())
    }

    /// The `get_entity` of the `n`-th call: companies in turn, and within a company its
    /// customers in turn (so that no two calls in flight are the same read).
    pub fn get_entity(&self, n: u64) -> Value {
        let (realm, customers) = &self.companies[n as usize % self.companies.len()];
        let id = &customers[(n as usize / self.companies.len()) % customers.len()];
        json!({"name": "get_entity", "arguments": {"entity": "Customer", "id": id, "company": realm}})
    }

    /// A pool of keep-alive connections to the servers, in turn, with this bearer token.
    pub fn caller(&self, token: &str) -> anyhow::Result<Caller> {
        Caller::new(self.servers.iter().map(|s| s.address).collect(), token)
    }

    /// Rows of `tool.call` in the audit log.
    pub async fn audited_calls(&self) -> anyhow::Result<i64> {
        use sqlx::Connection as _;
        let sql = "SELECT count(*) FROM audit_entries WHERE action = 'tool.call'";
        Ok(if self.backend == "postgres" {
            let mut db = sqlx::PgConnection::connect(&self.database_url).await?;
            sqlx::query_scalar(sql).fetch_one(&mut db).await?
        } else {
            let mut db = sqlx::SqliteConnection::connect(&self.database_url).await?;
            sqlx::query_scalar(sql).fetch_one(&mut db).await?
        })
    }

    /// CPU of every server so far, nanoseconds.
    pub fn servers_cpu_ns(&self) -> u64 {
        self.servers
            .iter()
            .filter_map(|s| crate::tool_calls::threads_cpu_ns(s.pid))
            .sum()
    }

    /// The simulator's overall counter `name`.
    pub fn sim_counter(&self, name: &str) -> u64 {
        self.sim.stats()[name].as_u64().unwrap_or(0)
    }

    /// Stops everything and drops the PostgreSQL database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for server in &mut self.servers {
            let _ = server.child.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(name) = self.pg_name.take() {
            mcp::psql(
                &self.postgres,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await?;
        }
        Ok(())
    }
}

static RIGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Resident set size of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// How one tool call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A result that is not a tool error.
    Ok,
    /// A tool error (e.g. "busy, retry"): its text.
    ToolError(String),
    /// No JSON-RPC result: transport failure or an HTTP error.
    Failed(String),
}

/// Keep-alive HTTP/1.1 connections to one or more servers, taken in turn.
pub struct Caller {
    addresses: Vec<std::net::SocketAddr>,
    hosts: Vec<HeaderValue>,
    authorization: HeaderValue,
    pools: Vec<tokio::sync::Mutex<Vec<SendRequest<Full<Bytes>>>>>,
    turn: std::sync::atomic::AtomicUsize,
}

impl Caller {
    pub fn new(addresses: Vec<std::net::SocketAddr>, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            hosts: addresses
                .iter()
                .map(|a| HeaderValue::from_str(&a.to_string()))
                .collect::<Result<_, _>>()?,
            pools: addresses
                .iter()
                .map(|_| tokio::sync::Mutex::new(Vec::new()))
                .collect(),
            addresses,
            authorization: HeaderValue::from_str(&format!("Bearer {token}"))?,
            turn: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Sends one JSON-RPC request to the next server; its parsed answer.
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let index =
            self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.addresses.len();
        let body = Bytes::from(
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string(),
        );
        let pooled = self.pools[index].lock().await.pop();
        let mut sender = match pooled {
            Some(sender) => sender,
            None => mcp::connect(self.addresses[index])
                .await
                .map_err(|e| format!("connect: {e}"))?,
        };
        sender.ready().await.map_err(|e| format!("ready: {e}"))?;
        let request = hyper::Request::post("/mcp")
            .header(hyper::header::HOST, self.hosts[index].clone())
            .header(hyper::header::AUTHORIZATION, self.authorization.clone())
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
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        self.pools[index].lock().await.push(sender);
        if !status.is_success() {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
    }

    /// One `tools/call`.
    pub async fn call(&self, params: Value) -> Answer {
        match self.rpc("tools/call", params).await {
            Ok(answer) => match answer.get("result") {
                Some(result) if result["isError"] == json!(true) => Answer::ToolError(
                    result["content"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect(),
                ),
                Some(_) => Answer::Ok,
                None => Answer::Failed(answer.to_string().chars().take(200).collect()),
            },
            Err(e) => Answer::Failed(e),
        }
    }
}

/// What a run of calls at an offered rate gave.
#[derive(Debug, Default)]
pub struct Run {
    pub sent: u64,
    pub ok: u64,
    pub tool_errors: u64,
    pub failed: u64,
    /// Ticks skipped because `max_in_flight` calls were already waiting.
    pub skipped: u64,
    /// Latency of the answered calls, microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// From the first send until the last answer.
    pub elapsed: Duration,
    /// A few tool errors and failures, to show what went wrong.
    pub samples: Vec<String>,
}

impl Run {
    pub fn answered(&self) -> u64 {
        self.ok + self.tool_errors
    }
}

/// Offers `rate` calls a second (`f64::INFINITY`: `count` at once) for `window` or until
/// `count` calls were sent, at most `max_in_flight` at a time; call `n` is `make(n)`.
pub async fn offer(
    caller: Arc<Caller>,
    rate: f64,
    window: Duration,
    count: Option<u64>,
    max_in_flight: usize,
    make: impl Fn(u64) -> Value,
) -> Run {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    let mut run = Run::default();
    let mut ticker = rate.is_finite().then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut n = 0u64;
    loop {
        if count.is_some_and(|c| n >= c) || (count.is_none() && start.elapsed() >= window) {
            break;
        }
        match ticker.as_mut() {
            Some(ticker) => {
                ticker.tick().await;
            }
            None => tokio::task::yield_now().await,
        }
        let permit = if ticker.is_some() {
            match in_flight.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    run.skipped += 1;
                    n += 1;
                    continue;
                }
            }
        } else {
            match in_flight.clone().acquire_owned().await {
                Ok(permit) => permit,
                Err(_) => break,
            }
        };
        let (caller, params) = (caller.clone(), make(n));
        n += 1;
        run.sent += 1;
        tasks.spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            let answer = caller.call(params).await;
            (answer, sent.elapsed())
        });
        // Collect finished calls as we go, so that memory stays flat over long runs.
        while let Some(done) = tasks.try_join_next() {
            tally(&mut run, done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        tally(&mut run, done);
    }
    run.elapsed = start.elapsed();
    run.latencies_us.sort_unstable();
    run
}

fn tally(run: &mut Run, done: Result<(Answer, Duration), tokio::task::JoinError>) {
    let (answer, took) = match done {
        Ok(done) => done,
        Err(e) => (Answer::Failed(e.to_string()), Duration::ZERO),
    };
    match answer {
        Answer::Ok => {
            run.ok += 1;
            run.latencies_us
                .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
        Answer::ToolError(text) => {
            run.tool_errors += 1;
            run.latencies_us
                .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            if run.samples.len() < 3 {
                run.samples.push(format!("tool error: {text}"));
            }
        }
        Answer::Failed(text) => {
            run.failed += 1;
            if run.samples.len() < 3 {
                run.samples.push(format!("failed: {text}"));
            }
        }
    }
}
