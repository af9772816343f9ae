//! Integration tests: each starts a real simulator on 127.0.0.1:0 and drives it over HTTP,
//! as the gateway and Intuit's client libraries would.

mod accounting;
mod attachments;
mod cli;
mod companies;
mod control;
mod embedding;
mod fidelity;
mod oauth;
mod queries;
mod query_props;
mod reports;
mod settings;
mod support;
