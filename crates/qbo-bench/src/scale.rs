//! The firm-scale benchmarks (docs/benchmarks.md, "A firm's scale"): throughput across many
//! companies, a refresh storm over replicas, an authorization storm, pacing, memory, and
//! `--quick`, which runs each briefly and fails only when an invariant breaks — a 429 from
//! QuickBooks, a tool call without its audit entry, more than one refresh per company, a
//! consent flow at Intuit, more than 10 requests in flight for a company — never on timing.
//!
//! Each prints a table and a JSON line, and returns the invariants it broke.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::mcp::{self, percentile};
use crate::rig::{self, Caller, Rig, RigOptions, Run};

/// Broken invariants, each a sentence.
pub type Broken = Vec<String>;

/// Success when nothing broke; otherwise prints each broken invariant and fails.
pub fn verdict(broken: Broken) -> anyhow::Result<()> {
    if broken.is_empty() {
        return Ok(());
    }
    for b in &broken {
        eprintln!("qbo-bench: invariant broken: {b}");
    }
    bail!("{} invariant(s) broken", broken.len())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn options(
    servers: &mcp::Servers,
    backend: &str,
    companies: usize,
    replicas: usize,
) -> anyhow::Result<RigOptions> {
    Ok(RigOptions {
        backend: backend.to_owned(),
        companies,
        replicas,
        postgres: servers.postgres.clone(),
        server: mcp::server_binary(servers.server.as_ref())?,
        sim: rig::intuit_limits(companies),
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

// ---------------------------------------------------------------------------------------------
// tool-calls --companies N

/// What `tool-calls` measures across many companies.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub companies: usize,
    pub rate: f64,
    pub concurrency: usize,
    pub seconds: u64,
}

/// Offers `rate` `get_entity` calls a second spread over `companies` companies (each company's
/// customers in turn) on one server, with the simulator at Intuit's limits; checks that
/// QuickBooks never throttled and that every answered call has its audit entry.
pub fn throughput(
    args: &Throughput,
    servers: &mcp::Servers,
    broken: &mut Broken,
) -> anyhow::Result<()> {
    let runtime = runtime()?;
    let mut rows = Vec::new();
    println!(
        "qbo-bench tool-calls: get_entity through /mcp across {} companies (one server, Intuit's limits at the simulator), offered {}/s, at most {} in flight, {} s",
        args.companies, args.rate, args.concurrency, args.seconds
    );
    println!(
        "{:<9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8} {:>8} {:>11} {:>9} {:>8} {:>8}  load",
        "backend",
        "sent",
        "ok",
        "calls/s",
        "busy",
        "failed",
        "skipped",
        "p50 ms",
        "p99 ms",
        "cpu µs/call",
        "throttled",
        "audited",
        "answered"
    );
    for backend in &servers.backends {
        let row = runtime.block_on(throughput_on(args, servers, backend, broken))?;
        rows.push(row);
    }
    println!(
        "{}",
        json!({"benchmark": "tool-calls", "companies": args.companies, "rate": args.rate,
               "concurrency": args.concurrency, "seconds": args.seconds,
               "cores": cores(), "results": rows})
    );
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn throughput_on(
    args: &Throughput,
    servers: &mcp::Servers,
    backend: &str,
    broken: &mut Broken,
) -> anyhow::Result<Value> {
    let rig = Rig::start(&options(servers, backend, args.companies, 1)?).await?;
    let caller = Arc::new(rig.caller(&rig.admin.token)?);
    // One call per company first: each must answer.
    let warm = rig::offer(
        caller.clone(),
        f64::INFINITY,
        Duration::ZERO,
        Some(rig.companies.len() as u64),
        rig.companies.len().min(200),
        |n| rig.get_entity(n),
    )
    .await;
    if warm.ok != warm.sent {
        bail!(
            "the first call per company did not all answer: {:?}",
            warm.samples
        );
    }
    let audited_before = rig.audited_calls().await?;
    let throttled_before = rig.sim_counter("throttled");
    let cpu_before = rig.servers_cpu_ns();
    let run = rig::offer(
        caller,
        args.rate,
        Duration::from_secs(args.seconds),
        None,
        args.concurrency,
        |n| rig.get_entity(n + warm.sent),
    )
    .await;
    let cpu_ns = rig.servers_cpu_ns().saturating_sub(cpu_before);
    let audited = rig.audited_calls().await? - audited_before;
    let throttled = rig.sim_counter("throttled") - throttled_before;
    let load = load_average();
    rig.stop().await?;
    let calls_per_s = run.ok as f64 / run.elapsed.as_secs_f64();
    let cpu_per_call = cpu_ns as f64 / 1000.0 / run.sent.max(1) as f64;
    let (p50, p99) = (
        percentile(&run.latencies_us, 0.5),
        percentile(&run.latencies_us, 0.99),
    );
    println!(
        "{:<9} {:>8} {:>8} {:>8.0} {:>7} {:>7} {:>9} {:>8.2} {:>8.2} {:>11.0} {:>9} {:>8} {:>8}  {}",
        backend,
        run.sent,
        run.ok,
        calls_per_s,
        run.tool_errors,
        run.failed,
        run.skipped,
        p50,
        p99,
        cpu_per_call,
        throttled,
        audited,
        run.answered(),
        load
    );
    for sample in &run.samples {
        println!("  {sample}");
    }
    check_calls(backend, &run, audited, throttled, broken);
    Ok(json!({
        "backend": backend, "sent": run.sent, "ok": run.ok, "busy": run.tool_errors,
        "failed": run.failed, "skipped": run.skipped, "calls_per_second": calls_per_s.round(),
        "p50_ms": p50, "p99_ms": p99, "server_cpu_us_per_call": cpu_per_call.round(),
        "throttled": throttled, "audited": audited, "answered": run.answered(),
        "load_average": load,
    }))
}

/// The invariants of any run of tool calls: none failed without an answer, QuickBooks never
/// throttled, and the audit log gained exactly one `tool.call` entry per answered call.
fn check_calls(what: &str, run: &Run, audited: i64, throttled: u64, broken: &mut Broken) {
    if throttled > 0 {
        broken.push(format!(
            "{what}: QuickBooks throttled {throttled} requests (429)"
        ));
    }
    if run.failed > 0 {
        broken.push(format!(
            "{what}: {} calls got no answer ({:?})",
            run.failed, run.samples
        ));
    }
    if audited != run.answered() as i64 {
        broken.push(format!(
            "{what}: {} calls answered but {audited} audit entries written",
            run.answered()
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// refresh-storm

/// Options of `refresh-storm`.
#[derive(Debug, clap::Args)]
pub struct RefreshStorm {
    /// Tool calls sent at once after the access tokens expire.
    #[arg(long, default_value_t = 300)]
    pub calls: u64,
    /// Companies the calls are spread over.
    #[arg(long, default_value_t = 10)]
    pub companies: usize,
    /// Servers on the one database (PostgreSQL; SQLite runs one).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    #[command(flatten)]
    pub servers: mcp::Servers,
}

pub fn refresh_storm(args: &RefreshStorm, broken: &mut Broken) -> anyhow::Result<()> {
    let runtime = runtime()?;
    println!(
        "qbo-bench refresh-storm: {} tool calls at once over {} companies, right after Intuit expired every access token",
        args.calls, args.companies
    );
    println!(
        "{:<9} {:>8} {:>6} {:>6} {:>6} {:>7} {:>10} {:>14} {:>11} {:>8} {:>8}  load",
        "backend",
        "replicas",
        "calls",
        "ok",
        "busy",
        "failed",
        "refreshes",
        "max/company",
        "refreshed",
        "p50 ms",
        "p99 ms"
    );
    let mut rows = Vec::new();
    for backend in &args.servers.backends {
        let replicas = replicas_on(backend, args.replicas);
        rows.push(runtime.block_on(refresh_storm_on(args, backend, replicas, broken))?);
    }
    println!("{}", json!({"benchmark": "refresh-storm", "results": rows}));
    Ok(())
}

async fn refresh_storm_on(
    args: &RefreshStorm,
    backend: &str,
    replicas: usize,
    broken: &mut Broken,
) -> anyhow::Result<Value> {
    let rig = Rig::start(&options(&args.servers, backend, args.companies, replicas)?).await?;
    let caller = Arc::new(rig.caller(&rig.admin.token)?);
    // Every replica reads (and caches) every company's token first.
    let warm = rig::offer(
        caller.clone(),
        f64::INFINITY,
        Duration::ZERO,
        Some((rig.companies.len() * replicas) as u64),
        100,
        |n| rig.get_entity(n),
    )
    .await;
    if warm.ok != warm.sent {
        bail!("warm-up calls failed: {:?}", warm.samples);
    }
    let state = rig.sim.state();
    let realm_refreshes = |realm: &str| {
        state
            .stats
            .get_for(qbo_sim::stats::Counter::RefreshRequests, realm)
    };
    let before: Vec<u64> = rig
        .companies
        .iter()
        .map(|(realm, _)| realm_refreshes(realm))
        .collect();
    let audited_before = rig.audited_calls().await?;
    let throttled_before = rig.sim_counter("throttled");
    let expired = state.grants.write().expire_access_tokens(state.clock.now());
    if expired == 0 {
        bail!("the simulator expired no access token");
    }
    let run = rig::offer(
        caller,
        f64::INFINITY,
        Duration::ZERO,
        Some(args.calls),
        args.calls as usize,
        |n| rig.get_entity(n),
    )
    .await;
    let per_company: Vec<u64> = rig
        .companies
        .iter()
        .zip(&before)
        .map(|((realm, _), b)| realm_refreshes(realm) - b)
        .collect();
    let audited = rig.audited_calls().await? - audited_before;
    let throttled = rig.sim_counter("throttled") - throttled_before;
    let load = load_average();
    rig.stop().await?;
    let total: u64 = per_company.iter().sum();
    let max = per_company.iter().copied().max().unwrap_or(0);
    let called = args.calls.min(per_company.len() as u64) as usize;
    let refreshed = per_company.iter().filter(|&&n| n > 0).count();
    let (p50, p99) = (
        percentile(&run.latencies_us, 0.5),
        percentile(&run.latencies_us, 0.99),
    );
    println!(
        "{:<9} {:>8} {:>6} {:>6} {:>6} {:>7} {:>10} {:>14} {:>11} {:>8.1} {:>8.1}  {}",
        backend,
        replicas,
        run.sent,
        run.ok,
        run.tool_errors,
        run.failed,
        total,
        max,
        format!("{refreshed}/{called}"),
        p50,
        p99,
        load
    );
    for sample in &run.samples {
        println!("  {sample}");
    }
    let what = format!("refresh-storm on {backend}");
    if max > 1 {
        broken.push(format!(
            "{what}: a company was refreshed {max} times (must be once)"
        ));
    }
    if refreshed != called {
        broken.push(format!(
            "{what}: {refreshed} of {called} companies refreshed their expired token"
        ));
    }
    if run.tool_errors > 0 {
        broken.push(format!(
            "{what}: {} calls answered with a tool error ({:?})",
            run.tool_errors, run.samples
        ));
    }
    check_calls(&what, &run, audited, throttled, broken);
    Ok(json!({
        "backend": backend, "replicas": replicas, "calls": run.sent, "ok": run.ok,
        "busy": run.tool_errors, "failed": run.failed, "refreshes": total,
        "max_refreshes_per_company": max, "companies_refreshed": refreshed,
        "companies_called": called, "p50_ms": p50, "p99_ms": p99, "throttled": throttled,
        "audited": audited, "load_average": load,
    }))
}

// ---------------------------------------------------------------------------------------------
// authorize-storm

/// Options of `authorize-storm`.
#[derive(Debug, clap::Args)]
pub struct AuthorizeStorm {
    /// People who each authorize an assistant at the same time.
    #[arg(long, default_value_t = 50)]
    pub people: usize,
    #[command(flatten)]
    pub servers: mcp::Servers,
}

const PASSWORD: &str = "a long bench password 2";
const REDIRECT: &str = "http://127.0.0.1:50001/callback";
/// A PKCE pair: the S256 challenge of the verifier (RFC 7636 §4.2).
const VERIFIER: &str = "qbo-mcp-test-verifier-0123456789-abcdefghijk";
const CHALLENGE: &str = "NcN4imzGSsHZXNidEMLIM1NIIJeMqUX24HP8z8USUVI";

pub fn authorize_storm(args: &AuthorizeStorm, broken: &mut Broken) -> anyhow::Result<()> {
    let runtime = runtime()?;
    println!(
        "qbo-bench authorize-storm: {} people sign in and authorize an assistant (OAuth 2.1, consent page) at once, then call a tool with its token",
        args.people
    );
    println!(
        "{:<9} {:>7} {:>11} {:>11} {:>10} {:>10} {:>12} {:>15}  load",
        "backend",
        "people",
        "authorized",
        "tool calls",
        "p50 s",
        "p99 s",
        "wall s",
        "Intuit consents"
    );
    let mut rows = Vec::new();
    for backend in &args.servers.backends {
        rows.push(runtime.block_on(authorize_storm_on(args, backend, broken))?);
    }
    println!(
        "{}",
        json!({"benchmark": "authorize-storm", "results": rows})
    );
    Ok(())
}

async fn authorize_storm_on(
    args: &AuthorizeStorm,
    backend: &str,
    broken: &mut Broken,
) -> anyhow::Result<Value> {
    let rig = Rig::start(&options(&args.servers, backend, 1, 1)?).await?;
    let base = format!("http://{}", rig.servers[0].address);
    for n in 0..args.people {
        let r = rig
            .admin
            .http
            .post(format!("{base}/api/v1/users"))
            .header("x-csrf-token", &rig.admin.csrf)
            .json(
                &json!({"username": format!("person{n}"), "role": "viewer", "password": PASSWORD}),
            )
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("creating person{n} answered {}", r.status());
        }
    }
    let intuit = |rig: &Rig| {
        (
            rig.sim_counter("authorize_requests"),
            rig.sim_counter("consents"),
            rig.sim_counter("code_exchanges"),
        )
    };
    let before = intuit(&rig);
    let started = Instant::now();
    let mut flows = tokio::task::JoinSet::new();
    for n in 0..args.people {
        let (base, realm_call) = (base.clone(), rig.get_entity(n as u64));
        flows.spawn(async move { authorize(&base, n, realm_call).await });
    }
    let (mut authorized, mut called, mut took, mut errors) = (0u64, 0u64, Vec::new(), Vec::new());
    while let Some(done) = flows.join_next().await {
        match done? {
            Ok((time, tool_ok)) => {
                authorized += 1;
                called += u64::from(tool_ok);
                took.push(u32::try_from(time.as_millis()).unwrap_or(u32::MAX));
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let wall = started.elapsed();
    let after = intuit(&rig);
    let load = load_average();
    rig.stop().await?;
    took.sort_unstable();
    let consents = (after.0 - before.0) + (after.1 - before.1) + (after.2 - before.2);
    println!(
        "{:<9} {:>7} {:>11} {:>11} {:>10.2} {:>10.2} {:>12.2} {:>15}  {}",
        backend,
        args.people,
        authorized,
        called,
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        wall.as_secs_f64(),
        consents,
        load
    );
    for e in errors.iter().take(3) {
        println!("  {e}");
    }
    let what = format!("authorize-storm on {backend}");
    if consents > 0 {
        broken.push(format!(
            "{what}: Intuit saw {} authorization requests, {} consents and {} code exchanges (must be 0)",
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2
        ));
    }
    if authorized != args.people as u64 || called != authorized {
        broken.push(format!(
            "{what}: {authorized} of {} people authorized an assistant, {called} of whose tool calls answered ({:?})",
            args.people,
            errors.iter().take(3).collect::<Vec<_>>()
        ));
    }
    Ok(json!({
        "backend": backend, "people": args.people, "authorized": authorized,
        "tool_calls_ok": called, "p50_s": percentile(&took, 0.5), "p99_s": percentile(&took, 0.99),
        "wall_s": wall.as_secs_f64(), "intuit_authorize_requests": after.0 - before.0,
        "intuit_consents": after.1 - before.1, "intuit_code_exchanges": after.2 - before.2,
        "load_average": load,
    }))
}

/// One person: sign in, register an assistant, authorize it on the consent page, exchange the
/// code, and make one tool call with the assistant's access token. The time the authorization
/// took, and whether the call answered.
async fn authorize(base: &str, n: usize, call: Value) -> anyhow::Result<(Duration, bool)> {
    let username = format!("person{n}");
    let username = username.as_str();
    // Each person at an address of their own (the servers trust 127.0.0.1 as a proxy):
    // client registrations are limited per address and hour.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        format!("10.0.{}.{}", n / 250, n % 250 + 1).parse()?,
    );
    let http = reqwest::Client::builder()
        .default_headers(headers.clone())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let started = Instant::now();
    let page = http
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = field(&page, "csrf_token").context("no CSRF field on the sign-in page")?;
    let r = http
        .post(format!("{base}/login"))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await?;
    if r.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("{username}: sign-in answered {}", r.status());
    }
    // The assistant registers and exchanges the code itself, without the person's cookies.
    let assistant = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;
    let client: Value = assistant
        .post(format!("{base}/oauth/register"))
        .json(&json!({"client_name": format!("Assistant of {username}"), "redirect_uris": [REDIRECT]}))
        .send()
        .await?
        .json()
        .await?;
    let client_id = client["client_id"]
        .as_str()
        .with_context(|| format!("{username}: registration answered {client}"))?
        .to_owned();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "bench"),
        ])
        .finish();
    let r = http
        .get(format!("{base}/oauth/authorize?{query}"))
        .send()
        .await?;
    let r = if r.status() == reqwest::StatusCode::OK {
        let page = r.text().await?;
        let mut fields = inputs(&page);
        fields.push(("decision".into(), "allow".into()));
        http.post(format!("{base}/oauth/authorize"))
            .form(&fields)
            .send()
            .await?
    } else {
        r
    };
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .with_context(|| format!("{username}: the consent answered {}", r.status()))?;
    let url = url::Url::parse(location)?;
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("{username}: no code in {location}"))?;
    let token: Value = assistant
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await?
        .json()
        .await?;
    let access = token["access_token"]
        .as_str()
        .with_context(|| format!("{username}: no access token: {token}"))?;
    let took = started.elapsed();
    let address = base.trim_start_matches("http://").parse()?;
    let caller = Caller::new(vec![address], access)?;
    let answer = caller.call(call).await;
    Ok((took, answer == rig::Answer::Ok))
}

fn field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    Some(page[start..].split('"').next()?.to_owned())
}

/// Every `<input name=… value=…>` of a page (the consent form's hidden fields).
fn inputs(page: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for tag in page.split("<input").skip(1) {
        let attr = |name: &str| {
            let marker = format!("{name}=\"");
            tag.find(&marker).map(|i| {
                tag[i + marker.len()..]
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .replace("&amp;", "&")
                    .replace("&quot;", "\"")
            })
        };
        if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
            fields.push((name, value));
        }
    }
    fields
}

// ---------------------------------------------------------------------------------------------
// pacing

/// Options of `pacing`.
#[derive(Debug, clap::Args)]
pub struct Pacing {
    /// Offered rates, calls a second to one company, one step each.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32")]
    pub rates: Vec<f64>,
    /// Seconds each rate is offered.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Servers on the one database (PostgreSQL; SQLite runs one); calls go to them in turn.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    #[command(flatten)]
    pub servers: mcp::Servers,
}

pub fn pacing(args: &Pacing, broken: &mut Broken) -> anyhow::Result<()> {
    if args.rates.iter().any(|r| !(0.1..=10_000.0).contains(r)) || args.seconds == 0 {
        bail!("--rates must be 0.1..=10000 each and --seconds at least 1");
    }
    let runtime = runtime()?;
    println!(
        "qbo-bench pacing: get_entity to one company at each offered rate for {} s (Intuit: 500 a minute, 10 in flight; qbo-mcp paces 480 a minute, burst 20)",
        args.seconds
    );
    println!(
        "{:<9} {:>8} {:>9} {:>11} {:>6} {:>6} {:>7} {:>11} {:>10} {:>8} {:>8}",
        "backend",
        "replicas",
        "offered/s",
        "delivered/s",
        "ok",
        "busy",
        "failed",
        "in flight",
        "429s",
        "p50 ms",
        "p99 ms"
    );
    let mut rows = Vec::new();
    for backend in &args.servers.backends {
        let replicas = replicas_on(backend, args.replicas);
        rows.extend(runtime.block_on(pacing_on(args, backend, replicas, broken))?);
    }
    println!(
        "{}",
        json!({"benchmark": "pacing", "seconds": args.seconds, "results": rows})
    );
    Ok(())
}

async fn pacing_on(
    args: &Pacing,
    backend: &str,
    replicas: usize,
    broken: &mut Broken,
) -> anyhow::Result<Vec<Value>> {
    let rig = Rig::start(&options(&args.servers, backend, 1, replicas)?).await?;
    let caller = Arc::new(rig.caller(&rig.admin.token)?);
    let state = rig.sim.state();
    let realm = rig.companies[0].0.clone();
    let mut rows = Vec::new();
    let mut sent = 0u64;
    for &rate in &args.rates {
        // A full bucket for each step: Intuit's minute and ours refill.
        tokio::time::sleep(Duration::from_secs(3)).await;
        state.stats.clear();
        let audited_before = rig.audited_calls().await?;
        let requests_before = rig.sim_counter("api_requests");
        let first = sent;
        let run = rig::offer(
            caller.clone(),
            rate,
            Duration::from_secs(args.seconds),
            None,
            10_000,
            |n| rig.get_entity(first + n),
        )
        .await;
        sent += run.sent;
        let stats = rig.sim.stats();
        let in_flight = stats["realms"][&realm]["max_in_flight"]
            .as_u64()
            .unwrap_or(0);
        let throttled = stats["throttled"].as_u64().unwrap_or(0);
        let upstream = stats["api_requests"].as_u64().unwrap_or(0) - requests_before;
        let audited = rig.audited_calls().await? - audited_before;
        let delivered = run.ok as f64 / run.elapsed.as_secs_f64();
        let (p50, p99) = (
            percentile(&run.latencies_us, 0.5),
            percentile(&run.latencies_us, 0.99),
        );
        println!(
            "{:<9} {:>8} {:>9.1} {:>11.2} {:>6} {:>6} {:>7} {:>11} {:>10} {:>8.1} {:>8.1}",
            backend,
            replicas,
            rate,
            delivered,
            run.ok,
            run.tool_errors,
            run.failed,
            in_flight,
            throttled,
            p50,
            p99
        );
        let what = format!("pacing on {backend} at {rate}/s");
        if in_flight > 10 {
            broken.push(format!(
                "{what}: {in_flight} requests in flight at once for one company (at most 10)"
            ));
        }
        check_calls(&what, &run, audited, throttled, broken);
        rows.push(json!({
            "backend": backend, "replicas": replicas, "offered_per_s": rate,
            "delivered_per_s": delivered, "ok": run.ok, "busy": run.tool_errors,
            "failed": run.failed, "max_in_flight": in_flight, "throttled": throttled,
            "upstream_requests": upstream, "elapsed_s": run.elapsed.as_secs_f64(),
            "p50_ms": p50, "p99_ms": p99, "audited": audited,
        }));
    }
    rig.stop().await?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// memory

/// Options of `memory`.
#[derive(Debug, clap::Args)]
pub struct Memory {
    /// MCP sessions to open: each a keep-alive connection that sent `initialize` and
    /// `tools/list` and stays open.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    #[command(flatten)]
    pub servers: mcp::Servers,
}

pub fn memory(args: &Memory) -> anyhow::Result<()> {
    let runtime = runtime()?;
    println!(
        "qbo-bench memory: RSS of qbo-mcp serve idle (it made the first admin, connected one company, answered one tool call), of a second server on the same database (one tool call, no password ever hashed), then of the first with {} MCP sessions open (targets: ≤ 30 MB idle, ≤ 150 MB with 1,000 sessions)",
        args.sessions
    );
    println!(
        "{:<9} {:>12} {:>14} {:>18} {:>20} {:>8}",
        "backend",
        "idle MB",
        "replica MB",
        format!("{} sessions MB", args.sessions),
        "per 1,000 sessions MB",
        "threads"
    );
    let mut rows = Vec::new();
    for backend in &args.servers.backends {
        rows.push(runtime.block_on(memory_on(args, backend))?);
    }
    println!(
        "{}",
        json!({"benchmark": "memory", "sessions": args.sessions, "results": rows})
    );
    Ok(())
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

async fn memory_on(args: &Memory, backend: &str) -> anyhow::Result<Value> {
    let rig = Rig::start(&options(&args.servers, backend, 1, 1)?).await?;
    let pid = rig.servers[0].pid;
    let address = rig.servers[0].address;
    let first = Caller::new(vec![address], &rig.admin.token)?;
    if first.call(rig.get_entity(0)).await != rig::Answer::Ok {
        bail!("the first tool call did not answer");
    }
    drop(first);
    // Idle: past tokio's 10 s keep-alive of blocking threads (the setup's Argon2id hash ran on
    // one), so that what such a thread held is given back.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let idle = rig::rss_bytes(pid).context("no RSS")?;
    // A second server on the same database that never hashed a password: a replica that
    // only serves tokens.
    let (replica, _) = rig.spawn(false).await?;
    let through_replica = Caller::new(vec![replica.address], &rig.admin.token)?;
    if through_replica.call(rig.get_entity(1)).await != rig::Answer::Ok {
        bail!("the first tool call through the second server did not answer");
    }
    drop(through_replica);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replica_idle = rig::rss_bytes(replica.pid).context("no RSS")?;
    let mut sessions = Vec::with_capacity(args.sessions);
    let mut opening = tokio::task::JoinSet::new();
    let token = rig.admin.token.clone();
    for n in 0..args.sessions {
        let token = token.clone();
        opening.spawn(async move {
            let session = Caller::new(vec![address], &token)?;
            session
                .rpc(
                    "initialize",
                    json!({"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": format!("bench-{n}"), "version": "1"}}),
                )
                .await
                .map_err(anyhow::Error::msg)?;
            session
                .rpc("tools/list", json!({}))
                .await
                .map_err(anyhow::Error::msg)?;
            anyhow::Ok(session)
        });
        if opening.len() >= 50
            && let Some(done) = opening.join_next().await
        {
            sessions.push(done??);
        }
    }
    while let Some(done) = opening.join_next().await {
        sessions.push(done??);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let open = rig::rss_bytes(pid).context("no RSS")?;
    let thread_count = threads(pid);
    drop(sessions);
    drop(replica);
    rig.stop().await?;
    let mb = |b: u64| b as f64 / 1_048_576.0;
    let per_thousand = mb(open.saturating_sub(idle)) * 1000.0 / args.sessions.max(1) as f64;
    println!(
        "{:<9} {:>12.1} {:>14.1} {:>18.1} {:>20.1} {:>8}",
        backend,
        mb(idle),
        mb(replica_idle),
        mb(open),
        per_thousand,
        thread_count
    );
    Ok(json!({
        "backend": backend, "idle_mb": mb(idle), "replica_idle_mb": mb(replica_idle),
        "sessions": args.sessions, "with_sessions_mb": mb(open),
        "per_1000_sessions_mb": per_thousand, "threads": thread_count,
    }))
}

// ---------------------------------------------------------------------------------------------
// --quick

/// Every benchmark, briefly, on small numbers: for CI. Fails only on broken invariants.
pub fn quick(servers: &mcp::Servers, broken: &mut Broken) -> anyhow::Result<()> {
    let started = Instant::now();
    let only = |backend: &str| mcp::Servers {
        backends: vec![backend.to_owned()],
        postgres: servers.postgres.clone(),
        server: servers.server.clone(),
    };
    let with_postgres = servers.backends.iter().any(|b| b == "postgres");
    let pg_or_sqlite = if with_postgres { "postgres" } else { "sqlite" };
    throughput(
        &Throughput {
            companies: 20,
            rate: 100.0,
            concurrency: 200,
            seconds: 3,
        },
        servers,
        broken,
    )?;
    refresh_storm(
        &RefreshStorm {
            calls: 60,
            companies: 5,
            replicas: 3,
            servers: only(pg_or_sqlite),
        },
        broken,
    )?;
    authorize_storm(
        &AuthorizeStorm {
            people: 5,
            servers: only("sqlite"),
        },
        broken,
    )?;
    pacing(
        &Pacing {
            rates: vec![16.0],
            seconds: 3,
            replicas: 2,
            servers: only(pg_or_sqlite),
        },
        broken,
    )?;
    memory(&Memory {
        sessions: 100,
        servers: only("sqlite"),
    })?;
    println!(
        "qbo-bench --quick: every benchmark in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Replicas to run on `backend`: one on SQLite (one server per database file), as asked on
/// PostgreSQL.
fn replicas_on(backend: &str, asked: usize) -> usize {
    if backend == "sqlite" { 1 } else { asked }
}
