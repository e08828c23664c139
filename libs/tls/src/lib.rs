//! TLS for uni: a sans-IO core and an async flow wrapper over rustls 0.23.
//!
//! Nothing is implemented yet: this crate holds its place in the workspace until issue #5
//! ("libs/crypto and libs/tls") fills it. A `tls` device in `unikernel.toml` is rejected by
//! `uni configure` with that explanation, so no unikernel can depend on it by accident.
#![no_std]
#![forbid(unsafe_code)]
