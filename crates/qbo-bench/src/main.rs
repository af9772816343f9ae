//! `qbo-bench`: starts what it needs and measures; see docs/benchmarks.md.
//! One subcommand per measurement; each prints a table and a JSON line.

mod mcp;
mod rig;
mod scale;
mod signin;
mod sim;
mod soak;
mod tool_calls;

use clap::{Parser, Subcommand};

/// Benchmarks for qbo-mcp and qbo-sim. Everything runs on this machine, on 127.0.0.1 only,
/// and stops by itself.
#[derive(Debug, Parser)]
#[command(name = "qbo-bench", version, args_conflicts_with_subcommands = true)]
struct Options {
    /// Run every benchmark briefly (under a minute) and fail only when an invariant breaks:
    /// a 429 from QuickBooks, a tool call without its audit entry, more than one token refresh
    /// per company, a consent flow at Intuit, more than 10 requests in flight for a company.
    /// Never fails on timing. CI runs it.
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    servers: mcp::Servers,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simple reads straight to an in-process simulator: throughput and latency.
    SimReads(sim::SimReads),
    /// MCP `tools/list` through the real server with a bearer token, on SQLite and PostgreSQL.
    McpToolsList(mcp::McpToolsList),
    /// An authenticated API read alone, then during a storm of concurrent sign-ins (Argon2id).
    Signin(signin::Signin),
    /// `get_entity` through the gateway next to the same read straight to the simulator:
    /// latency, server CPU per call, SQL statements and commits per call; with
    /// `--companies N`, throughput across N companies with every call's audit entry checked.
    ToolCalls(tool_calls::ToolCalls),
    /// N tool calls at once right after Intuit expired every access token, over R replicas:
    /// refreshes seen by the simulator (must be one per company).
    RefreshStorm(scale::RefreshStorm),
    /// M people authorizing assistants at once: consent flows at Intuit (must be none).
    AuthorizeStorm(scale::AuthorizeStorm),
    /// Offered against delivered rate to one company, requests in flight, QuickBooks' 429s.
    Pacing(scale::Pacing),
    /// RSS of the server idle and with many MCP sessions open.
    Memory(scale::Memory),
    /// Mixed traffic for minutes or hours over replicas with faults and SIGKILLs; checks
    /// connections, writes, audit entries and 5xx at the end (`scripts/soak`).
    Soak(soak::Soak),
}

fn main() -> std::process::ExitCode {
    let options = Options::parse();
    let mut broken = Vec::new();
    let outcome = match options.command {
        None if options.quick => scale::quick(&options.servers, &mut broken),
        None => Err(anyhow::anyhow!(
            "name a benchmark (see --help), or --quick to run them all briefly"
        )),
        Some(Command::SimReads(args)) => sim::run(args),
        Some(Command::McpToolsList(args)) => mcp::run(args),
        Some(Command::Signin(args)) => signin::run(args),
        Some(Command::ToolCalls(args)) => tool_calls::run(args),
        Some(Command::RefreshStorm(args)) => scale::refresh_storm(&args, &mut broken),
        Some(Command::AuthorizeStorm(args)) => scale::authorize_storm(&args, &mut broken),
        Some(Command::Pacing(args)) => scale::pacing(&args, &mut broken),
        Some(Command::Memory(args)) => scale::memory(&args),
        Some(Command::Soak(args)) => soak::run(args),
    }
    .and_then(|()| scale::verdict(broken));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("qbo-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
