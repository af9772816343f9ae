//! `qbo-bench sim-reads`: how many simple reads (`GET /v3/company/{realm}/customer/{id}` with
//! a valid access token) the simulator answers per second over keep-alive HTTP/1.1
//! connections (one per client), and at what latency. The simulator must never be the bottleneck of the other benchmarks.
//! The throttle is raised for the run; everything goes to 127.0.0.1 and stops on time.

use anyhow::{Context, bail};
use qbo_sim::{AutoConsent, SimConfig, Simulator};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Options of `sim-reads`.
#[derive(Debug, clap::Args)]
pub struct SimReads {
    /// How long to measure, in seconds (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Worker threads of the runtime that serves and drives (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

const ADMIN: &str = "craig@craigsdesign.example";
const REDIRECT: &str = "http://127.0.0.1/callback";

/// Runs the benchmark and prints its table and JSON.
pub fn run(args: SimReads) -> anyhow::Result<()> {
    if args.seconds == 0 || args.seconds > 600 || args.concurrency == 0 || args.concurrency > 1024 {
        bail!("--seconds must be 1..=600 and --concurrency 1..=1024");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(&args))?;
    print_result(&result, &args, threads);
    Ok(())
}

struct Measured {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    /// CPU time this process (simulator and clients together) used in the window.
    cpu_seconds: Option<f64>,
}

/// CPU time used by this process so far (user + system), from `/proc/self/stat`, in
/// seconds; Linux counts it in ticks of 1/100 s on every platform this project runs on.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields are counted after its ')'.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

pub(crate) async fn access_token(
    http: &reqwest::Client,
    base: &str,
) -> anyhow::Result<(String, String)> {
    let redirect = http
        .get(format!("{base}/connect/oauth2"))
        .query(&[
            ("client_id", "bench"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "com.intuit.quickbooks.accounting"),
            ("state", "bench"),
        ])
        .send()
        .await?;
    let location = redirect
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .context("no redirect from authorize")?;
    let url = reqwest::Url::parse(location)?;
    let pair = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let (code, realm) = (
        pair("code").context("no code")?,
        pair("realmId").context("no realmId")?,
    );
    let token: Value = http
        .post(format!("{base}/oauth2/v1/tokens/bearer"))
        .basic_auth("bench", Some("secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await?
        .json()
        .await?;
    let access = token["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned();
    Ok((access, realm))
}

/// One keep-alive HTTP/1.1 connection to the simulator (hyper, the client library reqwest is
/// built on, without reqwest's per-request extras: the clients should cost little CPU next to
/// the server they measure).
async fn connect(address: std::net::SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one read and drains the answer; true when it was a 200 with a whole body.
async fn read_once(
    sender: &mut SendRequest<Empty<Bytes>>,
    host: &str,
    path: &str,
    authorization: &str,
) -> bool {
    if sender.ready().await.is_err() {
        return false;
    }
    let Ok(request) = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::AUTHORIZATION, authorization)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
    else {
        return false;
    };
    match sender.send_request(request).await {
        Ok(response) if response.status().is_success() => {
            response.into_body().collect().await.is_ok()
        }
        _ => false,
    }
}

/// A simulator configuration with Intuit's throttle raised and consent given by `admin`.
pub(crate) fn unthrottled(admin: &str) -> SimConfig {
    SimConfig {
        rate_limit_per_minute: u32::MAX,
        report_rate_limit_per_minute: u32::MAX,
        concurrency_limit: u32::MAX,
        auto_consent: Some(AutoConsent {
            email: admin.into(),
            realm_id: None,
        }),
        ..SimConfig::default()
    }
}

async fn measure(args: &SimReads) -> anyhow::Result<Measured> {
    let config = unthrottled(ADMIN);
    let simulator = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
    let base = simulator.base_url();
    let setup = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (token, realm) = access_token(&setup, &base).await?;
    let customers: Value = setup
        .get(format!("{base}/v3/company/{realm}/query"))
        .query(&[("query", "SELECT Id FROM Customer MAXRESULTS 20")])
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let ids: Vec<String> = customers["QueryResponse"]["Customer"]
        .as_array()
        .context("no customers")?
        .iter()
        .filter_map(|c| c["Id"].as_str().map(str::to_owned))
        .collect();
    let warm_up = Duration::from_secs(1);
    let window = Duration::from_secs(args.seconds);
    let start = Instant::now();
    let cpu_probe = tokio::spawn(async move {
        tokio::time::sleep(warm_up).await;
        let first = process_cpu_seconds();
        tokio::time::sleep(window).await;
        Some(process_cpu_seconds()? - first?)
    });
    let mut workers = Vec::new();
    let address = simulator.local_addr();
    for worker in 0..args.concurrency {
        let paths: Vec<String> = ids
            .iter()
            .map(|id| format!("/v3/company/{realm}/customer/{id}?minorversion=75"))
            .collect();
        let authorization = format!("Bearer {token}");
        let host = address.to_string();
        workers.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut latencies) = (0u64, 0u64, Vec::with_capacity(1 << 16));
            let mut connection = connect(address).await.ok();
            let mut n = worker;
            loop {
                if start.elapsed() >= warm_up + window {
                    break;
                }
                let Some(sender) = connection.as_mut() else {
                    errors += 1;
                    connection = connect(address).await.ok();
                    continue;
                };
                let sent = Instant::now();
                let good = read_once(sender, &host, &paths[n % paths.len()], &authorization).await;
                n += 1;
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
        requests: 0,
        errors: 0,
        elapsed: window,
        latencies_us: Vec::new(),
        cpu_seconds: None,
    };
    for worker in workers {
        let (ok, errors, latencies) = worker.await?;
        measured.requests += ok;
        measured.errors += errors;
        measured.latencies_us.extend(latencies);
    }
    measured.cpu_seconds = cpu_probe.await?;
    let served: Value = simulator.stats();
    if served["api_requests"].as_u64().unwrap_or(0) < measured.requests {
        bail!("the simulator counted fewer requests than were answered");
    }
    simulator.shutdown().await;
    measured.latencies_us.sort_unstable();
    Ok(measured)
}

fn percentile(sorted: &[u32], share: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    f64::from(sorted[index.min(sorted.len() - 1)]) / 1000.0
}

fn print_result(result: &Measured, args: &SimReads, threads: usize) {
    let throughput = result.requests as f64 / result.elapsed.as_secs_f64();
    let p50 = percentile(&result.latencies_us, 0.50);
    let p99 = percentile(&result.latencies_us, 0.99);
    let per_cpu_second = result
        .cpu_seconds
        .filter(|s| *s > 0.0)
        .map(|s| result.requests as f64 / s);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "qbo-bench sim-reads: GET /v3/company/{{realm}}/customer/{{id}}, in-process simulator, 127.0.0.1"
    );
    println!(
        "{:<12} {:>10} {:>7} {:>10} {:>9} {:>9} {:>9} {:>14}",
        "concurrency", "requests", "errors", "reads/s", "p50 ms", "p99 ms", "cpu s", "reads/cpu-s"
    );
    println!(
        "{:<12} {:>10} {:>7} {:>10.0} {:>9.3} {:>9.3} {:>9.2} {:>14.0}",
        args.concurrency,
        result.requests,
        result.errors,
        throughput,
        p50,
        p99,
        result.cpu_seconds.unwrap_or(0.0),
        per_cpu_second.unwrap_or(0.0)
    );
    if let Some(per_cpu_second) = per_cpu_second {
        println!(
            "capacity with all {cores} cores to itself (clients included): about {:.0} reads/s",
            per_cpu_second * cores as f64
        );
    }
    let summary = json!({
        "benchmark": "sim-reads",
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "threads": threads,
        "requests": result.requests,
        "errors": result.errors,
        "reads_per_second": throughput.round(),
        "p50_ms": p50,
        "p99_ms": p99,
        "cpu_seconds": result.cpu_seconds,
        "reads_per_cpu_second": per_cpu_second.map(f64::round),
        "cores": cores,
    });
    println!("{summary}");
}
