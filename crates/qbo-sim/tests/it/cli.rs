//! The `qbo-sim` binary: `--help`, the one ready line on stdout, `--config`, `--seed`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_names_every_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_qbo-sim"))
        .arg("--help")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--listen",
        "--auto-consent",
        "--seed",
        "--config",
        "--companies",
    ] {
        assert!(text.contains(option), "{option} in --help");
    }
}

#[test]
fn bad_options_fail_with_a_sentence() {
    let output = Command::new(env!("CARGO_BIN_EXE_qbo-sim"))
        .args(["--listen", "127.0.0.1:0", "--auto-consent", "nobody"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--auto-consent"));
    let output = Command::new(env!("CARGO_BIN_EXE_qbo-sim"))
        .args(["--listen", "127.0.0.1:0", "--companies", "0"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("`companies` must be between 1 and"));
}

#[tokio::test]
async fn prints_one_ready_line_and_serves_with_the_configured_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sim.toml");
    std::fs::File::create(&config)
        .and_then(|mut f| {
            f.write_all(
                b"access_token_lifetime_s = 120\nrate_limit_per_minute = 900\ncompanies = 4\n",
            )
        })
        .expect("config file");
    let child = Command::new(env!("CARGO_BIN_EXE_qbo-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "3",
            "--auto-consent",
            "craig@craigsdesign.example",
        ])
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    let base = line
        .trim()
        .strip_prefix("qbo-sim listening on ")
        .expect("ready line format")
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"));
    let config: serde_json::Value = reqwest::get(format!("{base}/_sim/config"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(config["access_token_lifetime_s"], 120);
    assert_eq!(config["rate_limit_per_minute"], 900);
    assert_eq!(config["seed"], 3);
    assert_eq!(config["companies"], 4);
    let companies: Vec<serde_json::Value> = reqwest::get(format!("{base}/_sim/companies"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(companies.len(), 4, "the file's number of companies");
    assert_eq!(
        config["auto_consent"]["email"],
        "craig@craigsdesign.example"
    );
    let discovery: serde_json::Value =
        reqwest::get(format!("{base}/.well-known/openid_configuration"))
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
    assert_eq!(
        discovery["token_endpoint"],
        format!("{base}/oauth2/v1/tokens/bearer")
    );
}
