//! `qbo-bench soak` (run by `scripts/soak`): mixed traffic for minutes or hours — reads,
//! queries, reports and writes over several companies — against R replicas on one PostgreSQL
//! database, with a share of simulator faults (503 before anything, writes applied and then
//! answered 503, dropped connections) and one replica killed with SIGKILL and started again at a
//! fixed interval. At the end it checks what must hold whatever happened:
//!
//! - no company connection lost (every company still `connected`);
//! - no write duplicated: each create carries a marker, and the simulator's books hold each
//!   marker at most once, and exactly once for every create that answered success;
//! - no answered call without its audit entry (`tool.call` rows ≥ answered calls, and no more
//!   than calls sent);
//! - no 5xx from the gateway other than 503 (retryable), no 429 from QuickBooks;
//!
//! and reports the RSS of the replica that is never killed (start, end, growth), errors by
//! kind, and upstream requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::rig::{self, Answer, Caller, Rig, RigOptions};
use crate::{mcp, scale};

/// Options of `soak`.
#[derive(Debug, clap::Args)]
pub struct Soak {
    /// How long, in seconds.
    #[arg(long, default_value_t = 600)]
    pub seconds: u64,
    /// Tool calls a second, over every company.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Companies.
    #[arg(long, default_value_t = 10)]
    pub companies: usize,
    /// Servers on the one PostgreSQL database.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Share of QuickBooks requests that fail (spread over the three kinds of fault).
    #[arg(long, default_value_t = 0.05)]
    pub faults: f64,
    /// Seconds between two SIGKILLs of a replica (0: none). The first replica is never
    /// killed: its RSS is the one reported.
    #[arg(long, default_value_t = 60)]
    pub kill_every: u64,
    /// A PostgreSQL server where a fresh database may be created (and dropped afterwards).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres: String,
    /// The `qbo-mcp` binary (default: the one next to this program).
    #[arg(long)]
    pub server: Option<std::path::PathBuf>,
}

/// The callers of the replicas, one slot each; a slot is replaced when its replica is killed
/// and started again.
struct Slots(std::sync::RwLock<Vec<Arc<Caller>>>);

impl Slots {
    fn get(&self, n: u64) -> Arc<Caller> {
        let slots = self.0.read().unwrap_or_else(|p| p.into_inner());
        slots[n as usize % slots.len()].clone()
    }

    fn set(&self, index: usize, caller: Arc<Caller>) {
        self.0.write().unwrap_or_else(|p| p.into_inner())[index] = caller;
    }
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    tool_errors: AtomicU64,
    http_503: AtomicU64,
    http_other_5xx: AtomicU64,
    transport: AtomicU64,
    other_failures: AtomicU64,
    writes_ok: AtomicU64,
}

const MARK: &str = "soak-";

pub fn run(args: Soak) -> anyhow::Result<()> {
    if args.replicas == 0 || args.companies == 0 || !(0.0..=0.5).contains(&args.faults) {
        bail!("--replicas and --companies must be at least 1, --faults 0..=0.5");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let broken = runtime.block_on(soak(&args))?;
    scale::verdict(broken)
}

fn tool_call(rig: &Rig, n: u64) -> (Value, bool) {
    let (realm, customers) = &rig.companies[n as usize % rig.companies.len()];
    let id = &customers[(n as usize / rig.companies.len()) % customers.len()];
    match n % 20 {
        0..=13 => (rig.get_entity(n), false),
        14..=16 => (
            json!({"name": "query", "arguments": {"company": realm,
                   "query": format!("SELECT * FROM Invoice WHERE CustomerRef = '{id}'")}}),
            false,
        ),
        17 => (
            json!({"name": "run_report", "arguments": {"company": realm, "report": "ProfitAndLoss"}}),
            false,
        ),
        _ => (
            json!({"name": "create_entity", "arguments": {"company": realm, "entity": "JournalEntry",
                "fields": {"PrivateNote": format!("{MARK}{n}"), "Line": [
                    {"Amount": 1.25, "DetailType": "JournalEntryLineDetail",
                     "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"name": "Office Expenses"}}},
                    {"Amount": 1.25, "DetailType": "JournalEntryLineDetail",
                     "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"name": "Checking"}}}]}}}),
            true,
        ),
    }
}

async fn soak(args: &Soak) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let options = RigOptions {
        backend: "postgres".into(),
        companies: args.companies,
        replicas: args.replicas,
        postgres: args.postgres.clone(),
        server: mcp::server_binary(args.server.as_ref())?,
        sim: rig::intuit_limits(args.companies),
    };
    let mut rig = Rig::start(&options).await?;
    let callers: Vec<Arc<Caller>> = rig
        .servers
        .iter()
        .map(|s| Caller::new(vec![s.address], &rig.admin.token).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let slots = Arc::new(Slots(std::sync::RwLock::new(callers)));
    // The first write and read must work before faults start.
    let (probe, _) = tool_call(&rig, 18);
    if slots.get(0).call(probe.clone()).await != Answer::Ok {
        bail!(
            "a create through the gateway did not succeed: {:?}",
            slots.get(0).call(probe).await
        );
    }
    {
        let state = rig.sim.state();
        let mut config = state.config.write();
        config.error_rate = args.faults * 0.4;
        config.write_error_rate = args.faults * 0.4;
        config.drop_rate = args.faults * 0.2;
    }
    let audited_before = rig.audited_calls().await?;
    let first_pid = rig.servers[0].pid;
    let rss_start = rig::rss_bytes(first_pid).unwrap_or(0);
    let mut rss_max = rss_start;
    let tally = Arc::new(Tally::default());
    let created = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let window = Duration::from_secs(args.seconds);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut kills = 0u64;
    let mut next_kill = Duration::from_secs(args.kill_every);
    let mut next_report = Duration::from_secs(60);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 1_000u64;
    let soak_start = Instant::now();
    println!(
        "qbo-bench soak: {} s, {}/s over {} companies, {} replicas on PostgreSQL, {:.0} % simulator faults, a replica killed every {} s",
        args.seconds,
        args.rate,
        args.companies,
        args.replicas,
        args.faults * 100.0,
        args.kill_every
    );
    while soak_start.elapsed() < window {
        ticker.tick().await;
        let elapsed = soak_start.elapsed();
        if args.kill_every > 0 && args.replicas > 1 && elapsed >= next_kill {
            next_kill += Duration::from_secs(args.kill_every);
            let index = 1 + (kills as usize % (args.replicas - 1));
            kills += 1;
            let _ = rig.servers[index].child.start_kill();
            let _ = rig.servers[index].child.wait().await;
            let (server, _) = rig.spawn(false).await?;
            slots.set(
                index,
                Arc::new(Caller::new(vec![server.address], &rig.admin.token)?),
            );
            rig.servers[index] = server;
        }
        if elapsed >= next_report {
            next_report += Duration::from_secs(60);
            let rss = rig::rss_bytes(first_pid).unwrap_or(0);
            rss_max = rss_max.max(rss);
            println!(
                "  {:>5.0} s: sent {} ok {} tool errors {} failed {} kills {} rss {:.1} MB",
                elapsed.as_secs_f64(),
                tally.sent.load(Ordering::Relaxed),
                tally.ok.load(Ordering::Relaxed),
                tally.tool_errors.load(Ordering::Relaxed),
                tally.http_503.load(Ordering::Relaxed)
                    + tally.http_other_5xx.load(Ordering::Relaxed)
                    + tally.transport.load(Ordering::Relaxed)
                    + tally.other_failures.load(Ordering::Relaxed),
                kills,
                rss as f64 / 1_048_576.0
            );
        }
        let (params, write) = tool_call(&rig, n);
        let caller = slots.get(n);
        let (tally, created, id) = (tally.clone(), created.clone(), n);
        n += 1;
        tally.sent.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            match caller.call(params).await {
                Answer::Ok => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    if write {
                        tally.writes_ok.fetch_add(1, Ordering::Relaxed);
                        created.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                    }
                }
                Answer::ToolError(_) => {
                    tally.tool_errors.fetch_add(1, Ordering::Relaxed);
                }
                Answer::Failed(text) if text.starts_with("HTTP 503") => {
                    tally.http_503.fetch_add(1, Ordering::Relaxed);
                }
                Answer::Failed(text) if text.starts_with("HTTP 5") => {
                    eprintln!("  5xx: {text}");
                    tally.http_other_5xx.fetch_add(1, Ordering::Relaxed);
                }
                Answer::Failed(text)
                    if text.starts_with("send")
                        || text.starts_with("connect")
                        || text.starts_with("ready")
                        || text.starts_with("body") =>
                {
                    tally.transport.fetch_add(1, Ordering::Relaxed);
                }
                Answer::Failed(text) => {
                    eprintln!("  failure: {text}");
                    tally.other_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let rss_end = rig::rss_bytes(first_pid).unwrap_or(0);
    rss_max = rss_max.max(rss_end);
    {
        let state = rig.sim.state();
        let mut config = state.config.write();
        config.error_rate = 0.0;
        config.write_error_rate = 0.0;
        config.drop_rate = 0.0;
    }
    let audited = rig.audited_calls().await? - audited_before;
    let throttled = rig.sim_counter("throttled");
    let upstream = rig.sim_counter("api_requests");
    let faults = rig.sim_counter("faults_injected") + rig.sim_counter("connections_dropped");

    // Writes: each marker at most once in the books, every successful create exactly once.
    let mut markers = std::collections::HashMap::<u64, u32>::new();
    for company in rig.sim.state().companies().iter() {
        for entry in company.books.read().all_named("JournalEntry") {
            if let Some(id) = entry["PrivateNote"]
                .as_str()
                .and_then(|note| note.strip_prefix(MARK))
                .and_then(|id| id.parse::<u64>().ok())
            {
                *markers.entry(id).or_default() += 1;
            }
        }
    }
    let duplicated = markers.values().filter(|&&c| c > 1).count();
    let created = created.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let missing = created
        .iter()
        .filter(|id| markers.get(id).copied().unwrap_or(0) != 1)
        .count();
    // Connections: every company still connected, seen through a replica.
    let base = format!("http://{}", rig.servers[0].address);
    let listed: Value = rig
        .admin
        .http
        .get(format!("{base}/api/v1/companies"))
        .bearer_auth(&rig.admin.token)
        .send()
        .await?
        .json()
        .await?;
    let list = listed
        .as_array()
        .or_else(|| listed["companies"].as_array())
        .cloned()
        .unwrap_or_default();
    let connected = list.iter().filter(|c| c["status"] == "connected").count();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    rig.stop().await?;

    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let answered = t(&tally.ok) + t(&tally.tool_errors);
    let unanswered = t(&tally.sent) - answered;
    let mb = |b: u64| b as f64 / 1_048_576.0;
    let mut broken = Vec::new();
    if connected != args.companies {
        broken.push(format!(
            "{} of {} companies are still connected",
            connected, args.companies
        ));
    }
    if duplicated > 0 {
        broken.push(format!("{duplicated} writes were applied more than once"));
    }
    if missing > 0 {
        broken.push(format!(
            "{missing} creates answered success but are not in the books exactly once"
        ));
    }
    if audited < answered as i64 || audited > t(&tally.sent) as i64 {
        broken.push(format!(
            "{answered} calls answered, {} sent, but {audited} audit entries",
            t(&tally.sent)
        ));
    }
    if t(&tally.http_other_5xx) > 0 {
        broken.push(format!(
            "{} answers were a 5xx other than 503",
            t(&tally.http_other_5xx)
        ));
    }
    if throttled > 0 {
        broken.push(format!("QuickBooks throttled {throttled} requests"));
    }
    println!(
        "{:<22} {:>10}",
        "duration s",
        format!("{:.0}", soak_start.elapsed().as_secs_f64())
    );
    for (label, value) in [
        ("calls sent", t(&tally.sent).to_string()),
        ("answered ok", t(&tally.ok).to_string()),
        ("answered tool error", t(&tally.tool_errors).to_string()),
        ("HTTP 503", t(&tally.http_503).to_string()),
        ("HTTP 5xx other", t(&tally.http_other_5xx).to_string()),
        ("cut (replica killed)", t(&tally.transport).to_string()),
        ("other failures", t(&tally.other_failures).to_string()),
        ("replicas killed", kills.to_string()),
        ("upstream requests", upstream.to_string()),
        ("simulator faults", faults.to_string()),
        ("QuickBooks 429s", throttled.to_string()),
        ("writes ok", t(&tally.writes_ok).to_string()),
        ("writes duplicated", duplicated.to_string()),
        ("audit entries", audited.to_string()),
        (
            "companies connected",
            format!("{connected}/{}", args.companies),
        ),
        ("RSS start MB", format!("{:.1}", mb(rss_start))),
        ("RSS end MB", format!("{:.1}", mb(rss_end))),
        ("RSS max MB", format!("{:.1}", mb(rss_max))),
    ] {
        println!("{label:<22} {value:>10}");
    }
    println!(
        "{}",
        json!({
            "benchmark": "soak", "seconds": args.seconds, "rate": args.rate,
            "companies": args.companies, "replicas": args.replicas, "faults": args.faults,
            "kill_every_s": args.kill_every, "sent": t(&tally.sent), "ok": t(&tally.ok),
            "tool_errors": t(&tally.tool_errors), "http_503": t(&tally.http_503),
            "http_other_5xx": t(&tally.http_other_5xx), "cut": t(&tally.transport),
            "unanswered": unanswered, "other_failures": t(&tally.other_failures),
            "kills": kills, "upstream_requests": upstream, "simulator_faults": faults,
            "throttled": throttled, "writes_ok": t(&tally.writes_ok), "writes_duplicated": duplicated,
            "writes_missing": missing, "audited": audited, "answered": answered,
            "companies_connected": connected, "rss_start_mb": mb(rss_start),
            "rss_end_mb": mb(rss_end), "rss_max_mb": mb(rss_max),
            "wall_s": started.elapsed().as_secs_f64(), "load_average": load.trim(),
            "invariants_broken": broken,
        })
    );
    Ok(broken)
}
