//! The integration tests: one binary, so linking happens once. Every test starts the real
//! server (or CLI) as a process on port 0 with a fresh database and talks to it over HTTP;
//! storage tests run on SQLite and on PostgreSQL (`QBO_MCP_TEST_POSTGRES`).

mod harness;

mod assistants;
mod attachments;
mod audit;
mod call_path;
mod companies;
mod conformance;
mod connections;
mod foundation;
mod oauth;
mod operations;
mod pacing;
mod people;
mod proposals;
mod proxy;
mod refusals;
mod replicas;
mod security_misc;
mod security_oauth;
mod security_people;
mod storage;
mod tools;
mod writes;
