//! `qbo-bench signin`: does a sign-in storm starve other requests? Starts the real `qbo-mcp`
//! binary (next to this one, or `--server`) on a fresh SQLite database in a temporary
//! directory, creates an admin and a personal access token with the CLI, then measures an
//! authenticated API read (`GET /api/v1/me` with the token: one indexed query) first alone,
//! then while C clients sign in through the form (Argon2id) as fast as they can. Prints a
//! table and a JSON line. Everything is on 127.0.0.1 and stops on time.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

/// Options of `signin`.
#[derive(Debug, clap::Args)]
pub struct Signin {
    /// Seconds per phase (quiet, then storm).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients signing in during the storm.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// The qbo-mcp binary (default: `qbo-mcp` beside this program).
    #[arg(long)]
    server: Option<PathBuf>,
}

const PASSWORD: &str = "benchmark password 1234";
const KEY: &str = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMTI=";

pub fn run(args: Signin) -> anyhow::Result<()> {
    if args.seconds == 0 || args.seconds > 600 || args.concurrency == 0 || args.concurrency > 1000 {
        bail!("--seconds must be 1..=600 and --concurrency 1..=1000");
    }
    let server = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("qbo-mcp"),
    };
    if !server.exists() {
        bail!(
            "{} does not exist; build it (cargo build --release -p qbo-mcp) or pass --server",
            server.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(&args, &server))
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(dir: &Dir) -> Vec<(String, String)> {
    vec![
        ("QBO_MCP_DATA_DIR".into(), dir.0.display().to_string()),
        (
            "QBO_MCP_DATABASE_URL".into(),
            format!("sqlite://{}/bench.db", dir.0.display()),
        ),
        ("QBO_MCP_SECRET_KEY".into(), KEY.into()),
        ("QBO_MCP_LISTEN".into(), "127.0.0.1:0".into()),
        ("QBO_MCP_LOG".into(), "error".into()),
    ]
}

async fn console(
    server: &PathBuf,
    dir: &Dir,
    args: &[&str],
    stdin: &str,
) -> anyhow::Result<String> {
    let mut child = Command::new(server)
        .args(args)
        .env_clear()
        .envs(env(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take().context("stdin")?;
    input.write_all(stdin.as_bytes()).await?;
    drop(input);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "qbo-mcp {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// Reads `/api/v1/me` with the token, one request at a time, until `stop`; latencies in µs.
async fn reader(base: String, token: String, stop: Arc<AtomicBool>) -> anyhow::Result<Vec<u32>> {
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("read answered {}", r.status());
        }
        r.bytes().await?;
        latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    Ok(latencies)
}

/// Signs in through the form until `stop`; counts successes, collects latencies.
async fn signer(
    base: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> anyhow::Result<Vec<u32>> {
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let t = Instant::now();
        let page = http
            .get(format!("{base}/login"))
            .send()
            .await?
            .text()
            .await?;
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.find(marker).ok_or_else(|| anyhow!("no csrf field"))? + marker.len();
        let csrf = page[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned();
        let r = http
            .post(format!("{base}/login"))
            .form(&[
                ("username", "root"),
                ("password", PASSWORD),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await?;
        if r.status() != reqwest::StatusCode::SEE_OTHER {
            bail!("sign-in answered {}", r.status());
        }
        latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(latencies)
}

async fn measure(args: &Signin, server: &PathBuf) -> anyhow::Result<()> {
    let dir = Dir(std::env::temp_dir().join(format!("qbo-bench-signin-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    console(
        server,
        &dir,
        &["user", "add", "root", "--role", "admin", "--password-stdin"],
        PASSWORD,
    )
    .await?;
    let token = console(
        server,
        &dir,
        &["token", "create", "--user", "root", "--name", "bench"],
        "",
    )
    .await?;
    let mut child = Command::new(server)
        .arg("serve")
        .env_clear()
        .envs(env(&dir))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let first = lines.next_line().await?.context("server stopped")?;
    let base = first
        .strip_prefix("qbo-mcp listening on ")
        .context("listening line")?
        .to_owned();
    let phase = Duration::from_secs(args.seconds);

    // Quiet: reads alone.
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = tokio::spawn(reader(base.clone(), token.clone(), stop.clone()));
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let mut quiet = quiet.await??;

    // Storm: the same reads while C clients sign in.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let signers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(signer(base.clone(), stop.clone(), done.clone())))
        .collect();
    let storm = tokio::spawn(reader(base.clone(), token.clone(), stop.clone()));
    let started = Instant::now();
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut storm = storm.await??;
    let mut signin_latencies = Vec::new();
    for s in signers {
        signin_latencies.extend(s.await??);
    }
    child.kill().await?;
    quiet.sort_unstable();
    storm.sort_unstable();
    signin_latencies.sort_unstable();
    let sign_ins = done.load(Ordering::Relaxed);
    let result = json!({
        "benchmark": "signin",
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "quiet_reads": quiet.len(),
        "quiet_read_p50_ms": percentile(&quiet, 0.5),
        "quiet_read_p99_ms": percentile(&quiet, 0.99),
        "storm_reads": storm.len(),
        "storm_read_p50_ms": percentile(&storm, 0.5),
        "storm_read_p99_ms": percentile(&storm, 0.99),
        "sign_ins": sign_ins,
        "sign_ins_per_s": sign_ins as f64 / elapsed.as_secs_f64(),
        "sign_in_p50_ms": percentile(&signin_latencies, 0.5),
        "sign_in_p99_ms": percentile(&signin_latencies, 0.99),
    });
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "", "count", "p50 ms", "p99 ms"
    );
    println!(
        "{:<34} {:>10} {:>10.2} {:>10.2}",
        "API read, quiet",
        quiet.len(),
        percentile(&quiet, 0.5),
        percentile(&quiet, 0.99)
    );
    println!(
        "{:<34} {:>10} {:>10.2} {:>10.2}",
        format!("API read, {} clients signing in", args.concurrency),
        storm.len(),
        percentile(&storm, 0.5),
        percentile(&storm, 0.99)
    );
    println!(
        "{:<34} {:>10} {:>10.2} {:>10.2}",
        format!(
            "sign-ins ({:.1}/s)",
            sign_ins as f64 / elapsed.as_secs_f64()
        ),
        sign_ins,
        percentile(&signin_latencies, 0.5),
        percentile(&signin_latencies, 0.99)
    );
    println!("{result}");
    Ok(())
}
