//! Cryptography for uni: a rustls `CryptoProvider` assembled from RustCrypto crates, and the
//! Fortuna CSPRNG.
//!
//! Nothing is implemented yet: this crate holds its place in the workspace until issue #5 fills
//! it. Randomness on the unix target currently comes from the OS (`uni_runtime::platform::Random`).
#![no_std]
#![forbid(unsafe_code)]
