//! `qbo-bench`: starts what it needs and measures; see docs/benchmarks.md.
//! One subcommand per measurement; each prints a table and a JSON line.

mod mcp;
mod signin;
mod sim;
mod tool_calls;

use clap::{Parser, Subcommand};

/// Benchmarks for qbo-mcp and qbo-sim. Everything runs on this machine, on 127.0.0.1 only,
/// and stops by itself.
#[derive(Debug, Parser)]
#[command(name = "qbo-bench", version)]
struct Options {
    #[command(subcommand)]
    command: Command,
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
    /// latency, server CPU per call, SQL statements and commits per call.
    ToolCalls(tool_calls::ToolCalls),
}

fn main() -> std::process::ExitCode {
    let options = Options::parse();
    let outcome = match options.command {
        Command::SimReads(args) => sim::run(args),
        Command::McpToolsList(args) => mcp::run(args),
        Command::Signin(args) => signin::run(args),
        Command::ToolCalls(args) => tool_calls::run(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("qbo-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
