//! `uni new NAME`: a ready-to-run app outside the checkout: its Cargo.toml (uni's crates by the
//! paths the installed uni uses), a `#![no_std]` src/lib.rs whose `start` takes the devices in
//! declaration order, with one real use of each, unikernel.toml and .gitignore.
//!
//! The type `start` receives for each kind is the kind's own (`devices::Kind::receives`, as
//! `uni describe` and the build's signature note show it). How the app uses it (a sample
//! body, its unikernel.toml lines) is kept in [`TEMPLATES`] here rather than in
//! `devices/<kind>.rs`: a field on `devices::Kind` would have to be set in every kind's module,
//! tls's among them, which `uni new` does not write.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::show;
use crate::cli::New;
use crate::status::status;
use crate::{devices, generate, home};

/// What `uni new` writes for one device kind.
struct Template {
    kind: &'static str,
    /// The device's name in unikernel.toml and the parameter of `start`.
    name: &'static str,
    /// Kinds it runs over: added before it when not listed.
    needs: &'static [&'static str],
    /// Its keys in unikernel.toml, after `kind`, with a comment line or two.
    toml: &'static str,
    /// What `start` does with it: lines of Rust, `{name}` is the app's name.
    body: &'static str,
    /// `use` lines it needs.
    uses: &'static [&'static str],
    /// The crates of uni's workspace it needs, beyond uni-runtime.
    crates: &'static [&'static str],
}

/// The kinds `uni new` writes, in `devices::KINDS` order (tls is refused, see [`TLS`]).
const TEMPLATES: &[Template] = &[
    Template {
        kind: "console",
        name: "console",
        needs: &[],
        toml: "",
        body: "console.log(\"hello from {name}\").await?;",
        uses: &["uni_runtime::device::Console"],
        crates: &[],
    },
    Template {
        kind: "clock",
        name: "clock",
        needs: &[],
        toml: "",
        body: "let ms = clock.now().as_nanos() / 1_000_000;\n\
               console.log(&format!(\"clock: {ms} ms since boot\")).await?;",
        uses: &["uni_runtime::device::Clock"],
        crates: &[],
    },
    Template {
        kind: "random",
        name: "random",
        needs: &[],
        toml: "",
        body: "let mut bytes = [0u8; 8];\n\
               random.fill(&mut bytes);\n\
               console.log(&format!(\"random: {:016x}\", u64::from_le_bytes(bytes))).await?;",
        uses: &["uni_runtime::device::Random"],
        crates: &[],
    },
    Template {
        kind: "args",
        name: "args",
        needs: &[],
        toml: "# The boot arguments: `uni run -- --greeting=hi` on unix, `extra=` in the xl file on Xen.\n\
               # Each key the app reads is declared here with its type, default and doc: `--help`\n\
               # lists them, and a key not declared (or a value of the wrong form) is refused at boot.\n\
               keys.greeting = { type = \"string\", default = \"hello\", doc = \"what the app says at boot\" }\n",
        body: "// --greeting=TEXT: its default is the one unikernel.toml declares\n\
               let greeting = args.get(\"greeting\").unwrap_or_default();\n\
               console.log(&format!(\"args: {greeting} (--greeting=…)\")).await?;",
        uses: &["uni_runtime::BootArgs"],
        crates: &[],
    },
    Template {
        kind: "net",
        name: "net",
        needs: &[],
        toml: "# The host's sockets on unix; smoltcp over Xen netfront, with DHCP, on xen-arm.\n",
        body: "",
        uses: &["uni_runtime::device::net::Stack"],
        crates: &[],
    },
    Template {
        kind: "kv_ro",
        name: "data",
        needs: &[],
        toml: "# The files of data/, packed into the image by `uni build`.\ndir = \"data\"\n",
        body: "let hello = data.get(\"hello.txt\").await?;\n\
               console.log(&format!(\"data: hello.txt holds {} bytes\", hello.len())).await?;",
        uses: &["uni_runtime::device::KvRo"],
        crates: &[],
    },
    Template {
        kind: "kv_rw",
        name: "store",
        needs: &[],
        toml: "# A store on store.img (16 MiB, zeroed by `uni new`): formatted at the first boot.\n\
               file = \"store.img\"\nformat = true\n",
        body: "let keys = store.list(\"\").await?.len();\n\
               store.set(\"hello\", b\"hello from {name}\").await?;\n\
               console.log(&format!(\"store: {keys} keys, then wrote `hello`\")).await?;",
        uses: &["uni_runtime::device::KvRw"],
        crates: &[],
    },
    Template {
        kind: "block",
        name: "disk",
        needs: &[],
        toml: "# disk.img (1 MiB, zeroed by `uni new`): the file on unix, a Xen disk on xen-arm.\n\
               file = \"disk.img\"\n",
        body: "let info = disk.info();\n\
               let mut sector = vec![0u8; info.sector_size as usize];\n\
               disk.read(0, &mut sector).await?;\n\
               console.log(&format!(\"disk: {} sectors of {} bytes\", info.sectors, info.sector_size)).await?;",
        uses: &["uni_runtime::device::Block", "alloc::vec"],
        crates: &[],
    },
    Template {
        kind: "http",
        name: "http",
        needs: &["net"],
        toml: "# Port 8080; --http-port=N at boot overrides it.\nnet = \"net\"\nport = 8080\n",
        body: "let http = http.listen().await?;\n\
               console.log(&format!(\"http: listening on {}\", http.local_addr())).await?;\n\
               let Err(e) = http.serve(Hello, console).await;\n\
               Err(e.into())",
        uses: &[
            "uni_http::{Bytes, Handler, Plain, Request, Response, Server}",
            "uni_runtime::device::net::Stack",
            "uni_runtime::device::Clock",
        ],
        crates: &["uni-http"],
    },
    Template {
        kind: "dns",
        name: "dns",
        needs: &["net"],
        toml: "# Asks the nameserver of --nameserver=A.B.C.D[:PORT] at boot.\nnet = \"net\"\n",
        body: "let answer = match dns.lookup_ipv4(\"example.com\").await {\n\
               Ok(addrs) => addrs.iter().map(|a| format!(\"{a}\")).collect::<Vec<_>>().join(\", \"),\n\
               Err(e) => format!(\"{e}\"),\n\
               };\n\
               console.log(&format!(\"dns: example.com: {answer}\")).await?;",
        uses: &["uni_runtime::device::Resolver", "alloc::vec::Vec"],
        crates: &[],
    },
    Template {
        kind: "xenstore",
        name: "xenstore",
        needs: &[],
        toml: "",
        body: "let me = xenstore.read(\"name\").await?;\n\
               console.log(&format!(\"xenstore: my domain is {me}\")).await?;",
        uses: &["uni_runtime::device::Xenstore"],
        crates: &[],
    },
];

/// Why `uni new` does not write a tls device.
const TLS: &str = "`uni new` does not write a tls device: it needs a certificate and its private \
key, which must be yours (a key uni made up would end up trusted by nobody, or by accident). \
Make the app without it, then add a [devices.tls] table naming your files and `tls = \"tls\"` on \
the http device: docs/apps.md (\"Adding TLS\") has the lines, and an openssl command for a test \
certificate";

/// The port of the TCP server an app with a net device and no http device runs.
const HELLO_PORT: u16 = 8080;

pub fn run(args: New) -> Result<ExitCode> {
    check_name(&args.name)?;
    let kinds = device_list(&args.devices)?;
    let dir = match &args.path {
        Some(p) => p.clone(),
        None => PathBuf::from(&args.name),
    };
    let dir =
        std::path::absolute(&dir).with_context(|| format!("the directory `{}`", dir.display()))?;
    check_dir(&dir)?;
    let home = home::home()?;
    if let Some(inside) = inside(&dir, &home) {
        bail!(
            "`{}` is inside the uni checkout at `{}`: an app there must be a member of its \
             workspace, like examples/*; choose a directory outside it (--path DIR)",
            show(&dir),
            inside.display()
        );
    }

    let app = App {
        name: &args.name,
        devices: kinds.iter().map(|k| template(k)).collect(),
    };
    let mut crates = vec!["uni-runtime"];
    for t in &app.devices {
        for c in t.crates {
            if !crates.contains(c) {
                crates.push(c);
            }
        }
    }
    let mut deps = String::new();
    for c in &crates {
        let path = home::package_dir(c)?;
        writeln!(deps, "{c} = {{ path = {:?} }}", path.display().to_string())?;
    }

    let files: Vec<(&str, Vec<u8>)> = vec![
        ("Cargo.toml", app.cargo_toml(&deps, &home).into_bytes()),
        ("src/lib.rs", generate::rustfmt(&app.lib_rs())?.into_bytes()),
        ("unikernel.toml", app.unikernel_toml().into_bytes()),
        (".gitignore", b"/_build/\n/dist/\n/target/\n".to_vec()),
    ];
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating `{}`", show(&dir)))?;
    for (path, contents) in &files {
        let p = dir.join(path);
        std::fs::write(&p, contents).with_context(|| format!("writing `{}`", show(&p)))?;
    }
    for t in &app.devices {
        match t.kind {
            "kv_ro" => {
                std::fs::create_dir_all(dir.join("data"))?;
                std::fs::write(
                    dir.join("data/hello.txt"),
                    format!("hello from {}\n", app.name),
                )?;
            }
            "kv_rw" => zeroed(&dir.join("store.img"), 16 << 20)?,
            "block" => zeroed(&dir.join("disk.img"), 1 << 20)?,
            _ => {}
        }
    }
    // What was written must load: a failure here is uni's bug, said as such.
    crate::config::load(&dir.join("unikernel.toml")).with_context(|| {
        format!(
            "uni new wrote a unikernel.toml that uni does not accept (a bug in uni; please \
             report it) in `{}`",
            show(&dir)
        )
    })?;

    let names: Vec<&str> = app.devices.iter().map(|t| t.name).collect();
    status(
        "Created",
        format!(
            "app `{}` in {} (devices: {})",
            app.name,
            show(&dir),
            names.join(", ")
        ),
    );
    super::out(&app.next_steps(&dir))?;
    Ok(ExitCode::SUCCESS)
}

/// The app being written: its name and its devices in declaration order.
struct App<'a> {
    name: &'a str,
    devices: Vec<&'static Template>,
}

impl App<'_> {
    fn has(&self, kind: &str) -> bool {
        self.devices.iter().any(|t| t.kind == kind)
    }

    fn cargo_toml(&self, deps: &str, home: &Path) -> String {
        format!(
            "[package]\n\
             name = \"{name}\"\n\
             version = \"0.1.0\"\n\
             edition = \"2021\"\n\
             publish = false\n\
             \n\
             # uni's crates, by their paths in the uni checkout that `uni` uses ({home}: UNI_HOME,\n\
             # else the checkout uni was built from). `uni build` names them by the same paths;\n\
             # another clone here would be a second package of the same name (\"package\n\
             # collision in the lockfile\"). See docs/apps.md in uni.\n\
             [dependencies]\n\
             {deps}\
             \n\
             # An app is a workspace of its own (uni generates its main crate next to it, in _build/).\n\
             [workspace]\n",
            name = self.name,
            home = home.display(),
        )
    }

    fn unikernel_toml(&self) -> String {
        let mut s = format!(
            "# {name}: made by `uni new`. Each [devices.<name>] table is one argument of `start` in\n\
             # src/lib.rs, in this order. The keys of each kind: docs/unikernel-toml.md in uni.\n\
             [unikernel]\n\
             schema = 1\n\
             name = \"{name}\"\n",
            name = self.name
        );
        if self.has("xenstore") {
            s.push_str("# The Xen store exists only on Xen.\ntarget = \"xen-arm\"\n");
        }
        for t in &self.devices {
            write!(s, "\n[devices.{}]\n", t.name).unwrap();
            // comments first, then kind, then the keys
            let (comments, keys): (Vec<&str>, Vec<&str>) =
                t.toml.lines().partition(|l| l.starts_with('#'));
            for c in comments {
                writeln!(s, "{c}").unwrap();
            }
            writeln!(s, "kind = \"{}\"", t.kind).unwrap();
            for k in keys {
                writeln!(s, "{k}").unwrap();
            }
            if t.kind == "args" && self.serves_tcp() {
                writeln!(
                    s,
                    "keys.port = {{ type = \"port\", default = {HELLO_PORT}, doc = \"the TCP port the app says hello on\" }}"
                )
                .unwrap();
            }
        }
        s
    }

    /// An app with a net device and no http device: it runs a TCP server of its own.
    fn serves_tcp(&self) -> bool {
        self.has("net") && !self.has("http")
    }

    fn lib_rs(&self) -> String {
        let name = self.name;
        let http = self.has("http");
        let serves_tcp = self.serves_tcp();
        let mut uses: Vec<String> = vec!["uni_runtime::AppResult".into()];
        if self.devices.iter().any(|t| t.kind != "console") {
            uses.push("alloc::format".into());
        }
        for t in &self.devices {
            uses.extend(t.uses.iter().map(|u| u.to_string()));
        }
        if serves_tcp {
            uses.push("uni_runtime::device::net::{Flow, Listener}".into());
        }
        let uses = group(uses);
        let mut s = format!(
            "//! {name}: a uni app, made by `uni new`.\n\
             //!\n\
             //! `start` takes the devices of unikernel.toml as arguments, in the order they are\n\
             //! declared there; each kind gives one type (docs/apps.md in uni). The device traits\n\
             //! are in uni_runtime::device (`cargo doc -p uni-runtime --open` in uni's checkout).\n\
             //! An app is `no_std`: the same code runs as a Linux process and as a Xen guest.\n\
             #![no_std]\n\
             #![forbid(unsafe_code)]\n\n\
             extern crate alloc;\n\n"
        );
        for u in &uses {
            writeln!(s, "use {u};").unwrap();
        }
        s.push_str(
            "\n/// Entry point; the devices come from `unikernel.toml` in declaration order.\n",
        );
        let mut generics: Vec<&str> = vec![];
        for t in &self.devices {
            for g in devices::generics(t.receives()) {
                if !generics.contains(&g) {
                    generics.push(g);
                }
            }
        }
        let generics = if generics.is_empty() {
            String::new()
        } else {
            format!("<{}>", generics.join(", "))
        };
        writeln!(s, "pub async fn start{generics}(").unwrap();
        for t in &self.devices {
            let mut param = t.receives().to_string();
            if t.kind == "console" && http {
                // the http server logs each request to it
                param.push_str(" + 'static");
            }
            let unused = t.kind == "net" && !serves_tcp;
            let mutable = if t.kind == "kv_rw" { "mut " } else { "" };
            let var = if unused {
                format!("_{}", t.name)
            } else {
                t.name.to_string()
            };
            writeln!(s, "    {mutable}{var}: {param},").unwrap();
        }
        s.push_str(") -> AppResult\n");
        if http {
            s.push_str("where\n    S: Stack + Clone + 'static,\n    C: Clock + Clone + 'static,\n");
        }
        s.push_str("{\n");
        let last = |t: &Template| t.kind == "http";
        for t in self.devices.iter().filter(|t| !last(t)) {
            if t.kind == "net" {
                if serves_tcp {
                    continue;
                }
                s.push_str("    // net: the stack the http device serves on\n");
                continue;
            }
            for l in t.body.replace("{name}", name).lines() {
                writeln!(s, "    {l}").unwrap();
            }
        }
        if http {
            let t = self.devices.iter().find(|t| last(t)).expect("has http");
            for l in t.body.lines() {
                writeln!(s, "    {l}").unwrap();
            }
            s.push_str("}\n");
            write!(
                s,
                "\n/// The http device's handler: `GET /` says hello, anything else is 404.\n\
                 struct Hello;\n\n\
                 impl Handler for Hello {{\n\
                 type Body = Bytes;\n\n\
                 async fn handle(&self, request: &Request<'_>) -> Response<Bytes> {{\n\
                 match request.path() {{\n\
                 \"/\" => Response::new(200, Bytes::from(\"hello from {name}\\n\"))\n\
                 .header(\"Content-Type\", \"text/plain; charset=utf-8\"),\n\
                 _ => Response::status(404),\n\
                 }}\n}}\n}}\n"
            )
            .unwrap();
        } else if serves_tcp {
            let port = if self.has("args") {
                format!("args.get_or(\"port\", {HELLO_PORT}u16)?")
            } else {
                format!("{HELLO_PORT}")
            };
            write!(
                s,
                "    // net: each client of TCP port {HELLO_PORT}{args} is told hello\n\
                 let listener = net.listen({port}).await?;\n\
                 console.log(&format!(\"net: listening on {{}}\", listener.local_addr())).await?;\n\
                 loop {{\n\
                 let (mut flow, peer) = listener.accept().await?;\n\
                 let sent = flow.write_all(b\"hello from {name}\\n\").await;\n\
                 let _ = flow.close().await;\n\
                 let line = match sent {{\n\
                 Ok(()) => format!(\"net: said hello to {{peer}}\"),\n\
                 Err(e) => format!(\"net: {{peer}}: {{e}}\"),\n\
                 }};\n\
                 console.log(&line).await?;\n\
                 }}\n}}\n",
                args = if self.has("args") {
                    " (--port=N overrides it)"
                } else {
                    ""
                }
            )
            .unwrap();
        } else {
            s.push_str("    Ok(())\n}\n");
        }
        s
    }

    fn next_steps(&self, dir: &Path) -> String {
        let mut s = format!("Next:\n  cd {}\n", show(dir));
        let unix = !self.has("xenstore");
        if self.has("http") {
            if unix {
                s.push_str(
                    "  uni run                                # on unix; then: curl http://localhost:8080/\n",
                );
            }
            s.push_str(
                "  uni run --target xen-arm -p 8080:8080  # on the emulated Xen board, the same URL\n",
            );
        } else if self.has("net") {
            if unix {
                s.push_str(
                    "  uni run                                # on unix; then: nc localhost 8080\n",
                );
            }
            s.push_str(
                "  uni run --target xen-arm -p 8080:8080  # on the emulated Xen board, the same port\n",
            );
        } else {
            if unix {
                s.push_str("  uni run                                # on unix\n");
            }
            s.push_str("  uni run --target xen-arm               # on the emulated Xen board\n");
        }
        s.push_str("Edit src/lib.rs; writing an app: docs/apps.md in uni.\n");
        s
    }
}

/// `use` paths sorted, deduplicated, and those of one module merged: `a::{B, C}`.
fn group(paths: Vec<String>) -> Vec<String> {
    let mut by_module: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in paths {
        let (module, items) = match p.split_once("::{") {
            Some((m, rest)) => (m.to_string(), rest.trim_end_matches('}').to_string()),
            None => match p.rsplit_once("::") {
                Some((m, item)) => (m.to_string(), item.to_string()),
                None => (p.clone(), String::new()),
            },
        };
        let entry = by_module.entry(module).or_default();
        for i in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if !entry.iter().any(|e| e == i) {
                entry.push(i.to_string());
            }
        }
    }
    by_module
        .into_iter()
        .map(|(m, mut items)| {
            items.sort();
            match items.len() {
                1 => format!("{m}::{}", items[0]),
                _ => format!("{m}::{{{}}}", items.join(", ")),
            }
        })
        .collect()
}

impl Template {
    /// The parameter's type in `start`: what a device of its kind receives (devices/<kind>.rs).
    fn receives(&self) -> &'static str {
        devices::kind(self.kind)
            .expect("every template is of a known kind")
            .receives
    }
}

fn template(kind: &str) -> &'static Template {
    TEMPLATES
        .iter()
        .find(|t| t.kind == kind)
        .expect("device_list returns known kinds")
}

/// The kinds of `--devices` (default console, clock) in declaration order, with console first
/// when missing (every device's use is logged to it) and each kind a listed one needs before it.
fn device_list(listed: &Option<Vec<String>>) -> Result<Vec<&'static str>> {
    let default = ["console".to_string(), "clock".to_string()];
    let listed: Vec<&str> = match listed {
        Some(l) => l
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .collect(),
        None => default.iter().map(String::as_str).collect(),
    };
    let accepted = || {
        TEMPLATES
            .iter()
            .map(|t| t.kind)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out: Vec<&'static str> = vec![];
    for (i, k) in listed.iter().enumerate() {
        if *k == "tls" {
            bail!("{TLS}");
        }
        let Some(t) = TEMPLATES.iter().find(|t| t.kind == *k) else {
            let hint = match nearest(k, TEMPLATES.iter().map(|t| t.kind)) {
                Some(n) => format!("did you mean `{n}`? "),
                None => String::new(),
            };
            debug_assert!(devices::kind(k).is_none() || *k == "tls");
            bail!(
                "unknown device kind `{k}` (--devices); {hint}accepted: {}",
                accepted()
            );
        };
        if listed[..i].contains(k) {
            bail!(
                "device kind `{k}` is listed twice (--devices); `uni new` writes one device of \
                 each kind (add more to unikernel.toml afterwards, each with a name of its own)"
            );
        }
        for n in t.needs {
            if !out.contains(n) && !listed.contains(n) {
                out.push(template(n).kind);
            }
        }
        if !out.contains(&t.kind) {
            out.push(t.kind);
        }
    }
    if !out.contains(&"console") {
        out.insert(0, "console");
    }
    Ok(out)
}

/// The closest of `candidates` to `word`, when it is close (a typo).
fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Rust's keywords and the crates every Rust program has: cargo refuses them as package names,
/// or the lib would shadow them.
const NOT_A_NAME: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "std",
    "proc_macro",
    "test",
];

/// The app's name names the package, its library, the unikernel and the image: the
/// unikernel.toml rule (lowercase letters, digits, `-`, `_`, a letter first, at most 64),
/// and what cargo takes as a package name.
fn check_name(name: &str) -> Result<()> {
    let rule = "an app name is lowercase letters, digits, `-` and `_`, starting with a letter, at \
                most 64 characters (it names the package, the unikernel and its image), like \
                `web` or `my-app`";
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!("`{name}` is not a valid app name: {rule}");
    }
    let snake = name.replace('-', "_");
    if NOT_A_NAME.contains(&snake.as_str()) {
        bail!("`{name}` cannot name an app: it is a Rust keyword or a built-in crate's name; pick another, like `my-{name}`");
    }
    let taken = [
        "uni-runtime",
        "uni-net",
        "uni-tls",
        "uni-http",
        "uni-kv",
        "uni-crypto",
        "mirage-cli",
    ];
    if taken.iter().any(|t| t.replace('-', "_") == snake) {
        bail!(
            "`{name}` cannot name an app: it is the name of one of uni's own crates; pick another"
        );
    }
    Ok(())
}

/// Refuses a file, or a directory with anything in it.
fn check_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "`{}` already exists and is not empty: `uni new` writes only into a new or \
                     empty directory; pick another name, or another directory with --path DIR",
                    show(dir)
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if dir.exists() => bail!(
            "`{}` exists and is not a directory (or cannot be read): pick another name, or \
             another directory with --path DIR",
            show(dir)
        ),
        Err(e) => Err(e).with_context(|| format!("reading `{}`", show(dir))),
    }
}

/// The uni checkout when `dir` (which may not exist yet) lies inside it.
fn inside(dir: &Path, home: &Path) -> Option<PathBuf> {
    let home = std::fs::canonicalize(home).ok()?;
    // the deepest ancestor that exists, canonical, plus the rest
    let mut existing = dir;
    let mut rest = vec![];
    while !existing.exists() {
        rest.push(existing.file_name()?.to_owned());
        existing = existing.parent()?;
    }
    let mut real = std::fs::canonicalize(existing).ok()?;
    for r in rest.iter().rev() {
        real.push(r);
    }
    real.starts_with(&home).then_some(home)
}

/// A file of `len` zero bytes (sparse).
fn zeroed(path: &Path, len: u64) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating `{}`", show(path)))?;
    f.set_len(len)
        .with_context(|| format!("sizing `{}`", show(path)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_get_console_first_and_what_they_need_before_them() {
        let l = |s: &str| device_list(&Some(s.split(',').map(String::from).collect()));
        assert_eq!(device_list(&None).unwrap(), ["console", "clock"]);
        assert_eq!(l("http").unwrap(), ["console", "net", "http"]);
        assert_eq!(
            // net listed after dns stays there: uni builds each device after those it runs over
            l("clock,dns,net").unwrap(),
            ["console", "clock", "dns", "net"]
        );
        assert_eq!(l("net,console").unwrap(), ["net", "console"]);
        let e = l("console,htpp").unwrap_err().to_string();
        assert!(e.contains("unknown device kind `htpp`"), "{e}");
        assert!(e.contains("did you mean `http`?"), "{e}");
        assert!(e.contains("accepted: console, clock, random"), "{e}");
        let e = l("net,net").unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
        assert!(l("tls").unwrap_err().to_string().contains("Adding TLS"));
    }

    #[test]
    fn every_kind_but_tls_has_a_template() {
        for k in devices::KINDS {
            assert_eq!(
                TEMPLATES.iter().any(|t| t.kind == k.name),
                k.name != "tls",
                "{}",
                k.name
            );
        }
    }

    #[test]
    fn uses_of_one_module_are_merged() {
        let g = group(
            [
                "alloc::vec",
                "uni_runtime::device::Clock",
                "uni_http::{Server, Bytes}",
                "uni_runtime::device::Console",
                "uni_runtime::device::Clock",
                "alloc::vec::Vec",
            ]
            .map(String::from)
            .to_vec(),
        );
        assert_eq!(
            g,
            [
                "alloc::vec",
                "alloc::vec::Vec",
                "uni_http::{Bytes, Server}",
                "uni_runtime::device::{Clock, Console}"
            ]
        );
    }

    #[test]
    fn names() {
        for ok in ["web", "my-app", "a1_b"] {
            check_name(ok).unwrap();
        }
        for bad in [
            "",
            "Web",
            "1web",
            "-web",
            "we b",
            "fn",
            "std",
            "uni-http",
            "uni_runtime",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name(&"a".repeat(65)).is_err());
    }
}
