//! A minimal xen-arm unikernel for measuring code size (see ../size.sh): boot, read a boot
//! argument, and (with the features) build and use the provider and rustls. It is linked with
//! the real linker script, like a generated main.
#![no_std]
#![no_main]

extern crate alloc;

uni_runtime::entry!(unikernel);

/// An entropy source that a real image replaces with the platform's.
#[cfg(feature = "crypto")]
struct Input(u8);
#[cfg(feature = "crypto")]
impl uni_crypto::EntropySource for Input {
    fn gather(&mut self, out: &mut [u8; 32]) -> usize {
        self.0 = core::hint::black_box(self.0.wrapping_add(1));
        out.fill(self.0);
        32
    }
}

async fn unikernel(args: uni_runtime::BootArgs) -> uni_runtime::AppResult {
    let mut v = alloc::vec::Vec::new();
    v.extend_from_slice(args.get("x").unwrap_or("").as_bytes());
    #[cfg(feature = "crypto")]
    {
        let n = v.len() as u64;
        let rng = uni_crypto::Rng::new(move || n);
        rng.add_source(Input(0));
        let _ = rng.seed();
        let rng = rng.leak();
        let provider = alloc::sync::Arc::new(uni_crypto::provider(rng));
        #[cfg(not(feature = "tls"))]
        {
            // Touch every algorithm through the provider.
            for g in &provider.kx_groups {
                let _ = g.start().map(|k| k.complete(&v));
            }
            for s in &provider.cipher_suites {
                core::hint::black_box(s);
            }
            let _ = provider
                .key_provider
                .load_private_key(uni_crypto::pem::private_key(&v).unwrap());
            core::hint::black_box(provider.signature_verification_algorithms);
        }
        #[cfg(feature = "tls")]
        {
            use uni_tls::config::FixedTime;
            let time = alloc::sync::Arc::new(FixedTime(0));
            let id = uni_tls::Identity::from_pem(&v, &v).unwrap();
            let server = uni_tls::ServerOptions::new(id)
                .build(provider.clone(), rng, time.clone())
                .unwrap();
            let roots = uni_tls::config::roots(&v).unwrap();
            let auth =
                uni_tls::auth::chain_of_trust(&roots, time.clone(), provider.clone()).unwrap();
            let client = uni_tls::ClientOptions::new(auth)
                .build(provider, time)
                .unwrap();
            let mut s = uni_tls::Session::server(server).unwrap();
            let mut c = uni_tls::Session::client(client, "localhost").unwrap();
            let a = c.handle(&v).map(|o| o.to_send).unwrap_or_default();
            let b = s.handle(&a).map(|o| o.to_send).unwrap_or_default();
            let _ = core::hint::black_box((c.send(&b).is_ok(), s.info()));
        }
    }
    core::hint::black_box(&v);
    Ok(())
}
