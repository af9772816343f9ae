//! One typed `Config`, loaded once at start from an optional TOML file and `QBO_MCP_*`
//! variables (a variable wins over the file). Every value is validated here, with messages
//! that name the setting and say what to do; nothing else in the program reads the environment.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use url::Url;

use crate::secret::Secret;

/// Every setting, by its TOML key. The environment variable is `QBO_MCP_` + the key in upper case.
const KEYS: &[&str] = &[
    "listen",
    "public_url",
    "data_dir",
    "database_url",
    "secret_key",
    "intuit_client_id",
    "intuit_client_secret",
    "intuit_environment",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "tools_profile",
    "trusted_proxies",
    "client_ip_header",
    "audit_retention_days",
    "log",
    "log_format",
    "body_limit_bytes",
    "mcp_body_limit_bytes",
    "grant_single_company",
    "test_fault_point",
    "test_allow_loopback_cimd",
    "refresh_reuse_window_secs",
];

/// The default `/mcp` body limit: 24 MiB, a file of about 18 MB in base64.
pub const DEFAULT_MCP_BODY_LIMIT: usize = 24 * 1024 * 1024;
/// The largest `/mcp` body limit: enough for a 100 MB file (QuickBooks' limit) in base64.
pub const MAX_MCP_BODY_LIMIT: usize = 160 * 1024 * 1024;

/// How long audit entries are kept at least, in days, unless configured otherwise.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 365;

/// The server's configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// The URL people and clients use. `None`: derived from the bound address at start.
    pub public_url: Option<Url>,
    /// Where the default SQLite database and the generated secret key live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; may hold a password, hence secret.
    pub database_url: Secret<String>,
    /// The key that seals upstream tokens; `None`: read or generate `data_dir/secret.key`.
    pub secret_key: Option<Secret<[u8; 32]>>,
    /// The Intuit app; `None` means demo mode.
    pub intuit: Option<IntuitApp>,
    pub intuit_environment: IntuitEnvironment,
    /// The company's identity provider for sign-in, when configured.
    pub oidc: Option<OidcProvider>,
    pub tools_profile: ToolsProfile,
    /// Peers whose forwarded header (`client_ip_header`) is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Which header trusted proxies report the client's address in.
    pub client_ip_header: ClientIpHeader,
    /// Audit entries younger than this many days are never pruned by `qbo-mcp audit prune`
    /// (docs/operations.md, "Audit retention").
    pub audit_retention_days: u32,
    /// `tracing` filter directive, e.g. `info` or `qbo_mcp=debug`.
    pub log: String,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Largest `/mcp` request body, in bytes: it carries files for `attach_file` as base64
    /// (at least `body_limit_bytes`).
    pub mcp_body_limit_bytes: usize,
    /// With exactly one connected company, everyone may use it without an explicit grant.
    pub grant_single_company: bool,
    /// Test-only: a named point where the process aborts, to prove crash safety.
    pub test_fault_point: Option<String>,
    /// Tests only (`QBO_MCP_TEST_ALLOW_LOOPBACK_CIMD=1`): Client ID Metadata Documents may be
    /// fetched over plain HTTP from loopback addresses. Production refuses both.
    pub test_allow_loopback_cimd: bool,
    /// How long after a refresh token is rotated it is still accepted (a client racing itself,
    /// or retrying a lost response); later, presenting it revokes the grant (docs/oauth.md).
    pub refresh_reuse_window_secs: u64,
}

#[derive(Debug, Clone)]
pub struct IntuitApp {
    pub client_id: String,
    pub client_secret: Secret<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntuitEnvironment {
    Production,
    Sandbox,
    /// A `qbo-sim` at this base URL plays every Intuit endpoint.
    Simulator(Url),
}

#[derive(Debug, Clone)]
pub struct OidcProvider {
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: Secret<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolsProfile {
    Compact,
    Intuit,
}

/// The header trusted proxies put the client's address in (docs/deployment.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx's `$proxy_add_x_forwarded_for`).
    XForwardedFor,
    /// RFC 7239's `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// An address range such as `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or range like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has a prefix length outside 0..={max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// What went wrong while loading the configuration: one sentence per problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

/// Where a setting's value came from, so a message can point at it.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Env,
}

#[derive(Debug, Clone)]
struct RawValue {
    value: String,
    source: Source,
}

impl Config {
    /// The URL links and Intuit's redirect are built on outside a running server (the command
    /// line): the configured public URL, else the listen address.
    pub fn public_url_or_listen(&self) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{}", self.listen)).expect("a socket address makes a URL")
        })
    }

    /// Loads from `file` (if given) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Loads from `file` (if given) and the given variables; the variables win.
    pub fn load_from(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut raw: BTreeMap<&'static str, RawValue> = BTreeMap::new();
        let mut problems = Vec::new();
        if let Some(path) = file {
            read_file(path, &mut raw, &mut problems);
        }
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("QBO_MCP_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            match KEYS.iter().find(|k| **k == key) {
                Some(k) => {
                    raw.insert(
                        k,
                        RawValue {
                            value,
                            source: Source::Env,
                        },
                    );
                }
                // Variables that only tests or tools read are not settings.
                None if key.starts_with("test_") || key == "config" => {}
                None => problems.push(format!(
                    "{name} is not a qbo-mcp setting; the settings are {}.",
                    KEYS.iter()
                        .map(|k| env_name(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        let config = parse(&raw, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Demo mode: no Intuit app configured, so an embedded simulator plays Intuit.
    pub fn demo_mode(&self) -> bool {
        self.intuit.is_none()
    }
}

fn env_name(key: &str) -> String {
    format!("QBO_MCP_{}", key.to_ascii_uppercase())
}

fn describe(key: &str, raw: &BTreeMap<&'static str, RawValue>) -> String {
    match raw.get(key).map(|v| &v.source) {
        Some(Source::File(path)) => format!("`{key}` in {}", path.display()),
        _ => env_name(key),
    }
}

fn read_file(path: &Path, raw: &mut BTreeMap<&'static str, RawValue>, problems: &mut Vec<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!(
                "Cannot read the configuration file {}: {e}.",
                path.display()
            ));
            return;
        }
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!(
                "The configuration file {} is not valid TOML: {}",
                path.display(),
                e.message()
            ));
            return;
        }
    };
    for (key, value) in table {
        let Some(k) = KEYS.iter().find(|k| **k == key) else {
            problems.push(format!(
                "`{key}` in {} is not a qbo-mcp setting; the settings are {}.",
                path.display(),
                KEYS.join(", ")
            ));
            continue;
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                problems.push(format!(
                    "`{key}` in {} must be a string, number, boolean or list, not {}.",
                    path.display(),
                    other.type_str()
                ));
                continue;
            }
        };
        raw.insert(
            k,
            RawValue {
                value,
                source: Source::File(path.to_owned()),
            },
        );
    }
}

fn parse(raw: &BTreeMap<&'static str, RawValue>, problems: &mut Vec<String>) -> Config {
    let get = |key: &str| {
        raw.get(key)
            .map(|v| v.value.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut problem = |key: &str, sentence: String| {
        problems.push(format!("{}: {sentence}", describe(key, raw)));
    };

    let listen = match get("listen") {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(v) => v.parse().unwrap_or_else(|_| {
            problem(
                "listen",
                format!("`{v}` is not an address to listen on; write it like 127.0.0.1:8080 or [::]:8080."),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }),
    };

    let public_url = get("public_url").and_then(|v| match Url::parse(&v) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Some(u)
        }
        _ => {
            problem(
                "public_url",
                format!("`{v}` is not an http(s) URL without query or fragment, like https://qbo.example.com."),
            );
            None
        }
    });

    let data_dir = PathBuf::from(get("data_dir").unwrap_or_else(|| "./qbo-mcp-data".to_owned()));

    let database_url = match get("database_url") {
        None => format!("sqlite://{}/qbo-mcp.db", data_dir.display()),
        Some(v) => {
            let lower = v.to_ascii_lowercase();
            if !(lower.starts_with("sqlite:")
                || lower.starts_with("postgres://")
                || lower.starts_with("postgresql://"))
            {
                problem(
                    "database_url",
                    format!(
                        "`{}` is neither a sqlite:// nor a postgres:// URL.",
                        crate::secret::redact_url(&v)
                    ),
                );
            }
            v
        }
    };

    let secret_key = get("secret_key").and_then(|v| {
        match base64::engine::general_purpose::STANDARD.decode(v.as_bytes()) {
            Ok(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
                Ok(key) => Some(Secret::new(key)),
                Err(_) => {
                    problem(
                        "secret_key",
                        format!("the key decodes to {} bytes, but it must be exactly 32 bytes of base64 (make one with `openssl rand -base64 32`).", bytes.len()),
                    );
                    None
                }
            },
            Err(_) => {
                problem(
                    "secret_key",
                    "the key is not valid base64; make one with `openssl rand -base64 32`.".to_owned(),
                );
                None
            }
        }
    });

    let intuit = match (get("intuit_client_id"), get("intuit_client_secret")) {
        (None, None) => None,
        (Some(client_id), Some(secret)) => Some(IntuitApp {
            client_id,
            client_secret: Secret::new(secret),
        }),
        (Some(_), None) => {
            problem(
                "intuit_client_id",
                "is set but QBO_MCP_INTUIT_CLIENT_SECRET is not; set both, or neither for demo mode.".to_owned(),
            );
            None
        }
        (None, Some(_)) => {
            problem(
                "intuit_client_secret",
                "is set but QBO_MCP_INTUIT_CLIENT_ID is not; set both, or neither for demo mode."
                    .to_owned(),
            );
            None
        }
    };

    let intuit_environment = match get("intuit_environment").as_deref() {
        None | Some("production") => IntuitEnvironment::Production,
        Some("sandbox") => IntuitEnvironment::Sandbox,
        Some(other) => match Url::parse(other) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                IntuitEnvironment::Simulator(u)
            }
            _ => {
                problem(
                    "intuit_environment",
                    format!(
                        "`{other}` must be `production`, `sandbox`, or the http(s) base URL of a qbo-sim."
                    ),
                );
                IntuitEnvironment::Production
            }
        },
    };

    let oidc = match (
        get("oidc_issuer"),
        get("oidc_client_id"),
        get("oidc_client_secret"),
    ) {
        (None, None, None) => None,
        (Some(issuer), Some(client_id), Some(secret)) => match Url::parse(&issuer) {
            Ok(issuer) if matches!(issuer.scheme(), "http" | "https") => Some(OidcProvider {
                issuer,
                client_id,
                client_secret: Secret::new(secret),
            }),
            _ => {
                problem(
                    "oidc_issuer",
                    format!("`{issuer}` is not an http(s) URL of an OpenID Connect issuer."),
                );
                None
            }
        },
        _ => {
            problem(
                "oidc_issuer",
                "sign-in through an identity provider needs all three of QBO_MCP_OIDC_ISSUER, QBO_MCP_OIDC_CLIENT_ID and QBO_MCP_OIDC_CLIENT_SECRET.".to_owned(),
            );
            None
        }
    };

    let tools_profile = match get("tools_profile").as_deref() {
        None | Some("compact") => ToolsProfile::Compact,
        Some("intuit") => ToolsProfile::Intuit,
        Some(other) => {
            problem(
                "tools_profile",
                format!("`{other}` must be `compact` or `intuit`."),
            );
            ToolsProfile::Compact
        }
    };

    let trusted_proxies = get("trusted_proxies")
        .map(|v| {
            v.split(',')
                .filter(|s| !s.trim().is_empty())
                .filter_map(|s| match s.trim().parse::<IpNet>() {
                    Ok(net) => Some(net),
                    Err(e) => {
                        problem("trusted_proxies", format!("{e}."));
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();

    let client_ip_header = match get("client_ip_header")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("x-forwarded-for") => ClientIpHeader::XForwardedFor,
        Some("forwarded") => ClientIpHeader::Forwarded,
        Some(other) => {
            problem(
                "client_ip_header",
                format!("`{other}` must be `x-forwarded-for` or `forwarded`."),
            );
            ClientIpHeader::XForwardedFor
        }
    };

    let audit_retention_days = match get("audit_retention_days") {
        None => DEFAULT_AUDIT_RETENTION_DAYS,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=36_500).contains(&n) => n,
            _ => {
                problem(
                    "audit_retention_days",
                    format!(
                        "`{v}` must be a number of days between 1 and 36500 ({DEFAULT_AUDIT_RETENTION_DAYS} is the default)."
                    ),
                );
                DEFAULT_AUDIT_RETENTION_DAYS
            }
        },
    };

    let log = get("log").unwrap_or_else(|| "info".to_owned());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
        problem(
            "log",
            format!("`{log}` is not a log filter ({e}); try `info` or `qbo_mcp=debug,info`."),
        );
    }

    let log_format = match get("log_format").as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            problem("log_format", format!("`{other}` must be `text` or `json`."));
            LogFormat::Text
        }
    };

    let body_limit_bytes = match get("body_limit_bytes") {
        None => 1024 * 1024,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1024..=64 * 1024 * 1024).contains(&n) => n,
            _ => {
                problem(
                    "body_limit_bytes",
                    format!("`{v}` must be a number of bytes between 1024 and 67108864."),
                );
                1024 * 1024
            }
        },
    };

    let mcp_body_limit_bytes = match get("mcp_body_limit_bytes") {
        None => DEFAULT_MCP_BODY_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1024..=MAX_MCP_BODY_LIMIT).contains(&n) => n,
            _ => {
                problem(
                    "mcp_body_limit_bytes",
                    format!(
                        "`{v}` must be a number of bytes between 1024 and {MAX_MCP_BODY_LIMIT}."
                    ),
                );
                DEFAULT_MCP_BODY_LIMIT
            }
        },
    };

    let grant_single_company = match get("grant_single_company").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            problem(
                "grant_single_company",
                format!("`{other}` must be `true` or `false`."),
            );
            true
        }
    };

    let refresh_reuse_window_secs = match get("refresh_reuse_window_secs") {
        None => 30,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= 3600 => n,
            _ => {
                problem(
                    "refresh_reuse_window_secs",
                    format!(
                        "`{v}` must be a number of seconds between 0 and 3600 (30 is the default)."
                    ),
                );
                30
            }
        },
    };

    Config {
        listen,
        public_url,
        data_dir,
        database_url: Secret::new(database_url),
        secret_key,
        intuit,
        intuit_environment,
        oidc,
        tools_profile,
        trusted_proxies,
        client_ip_header,
        audit_retention_days,
        log,
        log_format,
        body_limit_bytes,
        mcp_body_limit_bytes,
        grant_single_company,
        test_fault_point: get("test_fault_point"),
        test_allow_loopback_cimd: matches!(
            get("test_allow_loopback_cimd").as_deref(),
            Some("1" | "true")
        ),
        refresh_reuse_window_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_serve_a_first_run() {
        let c = Config::load_from(None, vars(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.database_url.expose(),
            "sqlite://./qbo-mcp-data/qbo-mcp.db"
        );
        assert!(c.demo_mode());
        assert_eq!(c.tools_profile, ToolsProfile::Compact);
        assert_eq!(c.intuit_environment, IntuitEnvironment::Production);
    }

    #[test]
    fn variable_wins_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n").unwrap();
        let c =
            Config::load_from(Some(&path), vars(&[("QBO_MCP_LISTEN", "127.0.0.1:9001")])).unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.log, "debug");
    }

    #[test]
    fn every_problem_is_named() {
        let err = Config::load_from(
            None,
            vars(&[
                ("QBO_MCP_LISTEN", "nope"),
                ("QBO_MCP_DATABASE_URL", "mysql://x"),
                ("QBO_MCP_SECRET_KEY", "c2hvcnQ="),
                ("QBO_MCP_INTUIT_CLIENT_ID", "abc"),
                ("QBO_MCP_TOOLS_PROFILE", "huge"),
                ("QBO_MCP_LISTN", "typo"),
            ]),
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "QBO_MCP_LISTEN",
            "QBO_MCP_DATABASE_URL",
            "QBO_MCP_SECRET_KEY",
            "QBO_MCP_INTUIT_CLIENT_SECRET",
            "QBO_MCP_TOOLS_PROFILE",
            "QBO_MCP_LISTN is not a qbo-mcp setting",
        ] {
            assert!(text.contains(needle), "missing {needle} in:\n{text}");
        }
        assert_eq!(err.0.len(), 6, "{text}");
    }

    #[test]
    fn unknown_file_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lissen = \"x\"\n").unwrap();
        let err = Config::load_from(Some(&path), vars(&[])).unwrap_err();
        assert!(err.to_string().contains("`lissen`"), "{err}");
    }

    #[test]
    fn secrets_do_not_reach_debug() {
        let c = Config::load_from(
            None,
            vars(&[
                ("QBO_MCP_DATABASE_URL", "postgres://u:pw-123@localhost/db"),
                ("QBO_MCP_INTUIT_CLIENT_ID", "id"),
                ("QBO_MCP_INTUIT_CLIENT_SECRET", "intuit-secret-xyz"),
                (
                    "QBO_MCP_SECRET_KEY",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
            ]),
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("pw-123"), "{debug}");
        assert!(!debug.contains("intuit-secret-xyz"), "{debug}");
        assert!(!debug.contains("AAAAAAAA"), "{debug}");
    }

    #[test]
    fn ip_ranges() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.1.2.3".parse().unwrap()));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }
}
