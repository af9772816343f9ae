//! qbo-mcp: a team gateway from MCP assistants to QuickBooks Online. This library is the whole
//! server; `main.rs` is only the command line over it. Start reading at `app.rs`; the layers and
//! which module may use which are in `docs/architecture.md`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod companies;
pub mod config;
pub mod db;
pub mod error;
pub mod keys;
pub mod mcp;
pub mod oauth;
pub mod ops;
pub mod people;
pub mod proposals;
pub mod proxy;
pub mod quickbooks;
pub mod secret;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod time;
pub mod web;

/// mimalloc instead of the C library's allocator: every request allocates and frees many small
/// objects on several threads, and mimalloc does that with about a quarter fewer instructions
/// per MCP request in total (docs/benchmarks.md). Declared here, not in `main.rs`, so that the
/// tests run on the allocator the product runs on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(test)]
mod properties;
