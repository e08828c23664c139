//! The command line: one clap `Args` struct per command, each with examples in its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::target::Target;

const EXAMPLES: &str = "\
Examples:
  cd examples/hello
  uni configure --target unix      # write _build/unix/ (Cargo.toml, src/main.rs)
  uni build --target unix          # build it; the program lands in dist/
  uni run --target unix            # run it; exit code = the app's
  uni kv --disk data.img ls        # the kv_rw store in a disk image
  uni completions bash > /etc/bash_completion.d/uni";

/// Assemble unikernels from one config file, `unikernel.toml`.
///
/// uni reads the devices and protocols the app needs, generates a main crate that wires one
/// implementation of each into the app, and builds it for a target: `unix` (a Linux process)
/// or `xen-arm` (an armv7 Xen guest image).
#[derive(Debug, Parser)]
#[command(name = "uni", version, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// `-f PATH`, the short `--file`: before the command only, so that `uni logs -f` follows
    /// (as `docker compose -f FILE logs -f` does).
    #[arg(short = 'f', value_name = "PATH", hide = true, conflicts_with = "file")]
    pub file_short: Option<PathBuf>,
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Show the output of cargo, rustc and other tools uni runs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Print no status lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The config file (default: unikernel.toml). Before the command, `-f PATH` too.
    #[arg(long = "file", global = true, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

impl Cli {
    /// The config file: `-f`, else `--file`, else `unikernel.toml`.
    pub fn file(&self) -> PathBuf {
        self.file_short
            .clone()
            .or_else(|| self.global.file.clone())
            .unwrap_or_else(|| "unikernel.toml".into())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    New(New),
    Configure(Configure),
    Build(Build),
    Run(Run),
    Deploy(Deploy),
    Ps(Ps),
    Stop(Stop),
    Logs(Logs),
    Stats(Stats),
    Trace(Trace),
    Lan(Lan),
    Fetch(Fetch),
    Kv(crate::cmd::kv::Kv),
    Describe(Describe),
    Clean(Clean),
    Completions(Completions),
}

/// Generate the main crate under `_build/<target>/` from unikernel.toml.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni configure                    # the target named in unikernel.toml (else unix)
  uni configure --target xen-arm
  uni configure --dry-run          # print the plan, write nothing
  uni configure --check            # exit 1 if the generated files are stale (for CI)")]
pub struct Configure {
    /// The target to generate for (default: `target` in unikernel.toml, else unix).
    #[arg(short, long, value_enum)]
    pub target: Option<Target>,
    /// Print the files and commands, write nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// Write nothing; exit non-zero when a generated file is missing or out of date.
    #[arg(long)]
    pub check: bool,
    /// xen-arm: the board to generate for (default: unikernel.toml's, else qemu-virt).
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
}

/// Build the unikernel into dist/ (configuring first when needed).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni build                        # the default target
  uni build --target unix          # dist/<name>, a Linux program
  uni build -v                     # show cargo's output
  uni build --target xen-arm --board cubieboard2   # for another board than unikernel.toml's")]
pub struct Build {
    /// The target to build for (default: `target` in unikernel.toml, else unix).
    #[arg(short, long, value_enum)]
    pub target: Option<Target>,
    /// xen-arm: the board to build for (default: unikernel.toml's, else qemu-virt).
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Compile event tracing in, as `[trace]` in unikernel.toml does (docs/tracing.md).
    #[arg(long)]
    pub trace: bool,
}

/// Build and run the unikernel locally: as a process (unix) or on the emulated Xen ARM board.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni run                                # the default target
  uni run --target unix -- --port=8080   # boot arguments after --
  uni run --target xen-arm               # boot on real Xen under QEMU; guest console on stdout
  uni run --target xen-arm --timeout 60 -v
  uni run --target xen-arm -- --uni-timestamps   # boot arguments for this run (after extra=)
  uni run --target xen-arm -p 8443:443   # https://localhost:8443/ reaches the guest's port 443
  uni run --target xen-arm --no-build    # boot dist/<name>.xen and .xl as they are
  uni run --target xen-arm --board cubieboard2   # its image, on its emulation (32-bit Xen, A7)
  uni run --dom0 --trust-host-key        # the board alone with SSH in dom0, for `uni deploy`
  uni run --dom0 -p 7000:echo:7000       # … and 127.0.0.1:7000 to port 7000 of deployed `echo`

The board's LAN (10.0.0.0/24: dom0 10.0.0.1, guests by DHCP, the host's end 10.0.0.254) lives
in a network namespace of the run's own, with an unprivileged user namespace when uni is not
root: nothing of it is visible or routed in yours. Reach a guest with -p, or run a tool inside
the LAN with `uni lan` (see `uni lan --help`).

The exit code is the unikernel's. On unix it is the app's. On xen-arm it mirrors how the guest
shut down: poweroff 0, crash 1, reboot 2, the guest did not boot 3, timeout 124. With --dom0:
0 when stopped by Ctrl-C, a signal or --timeout; 3 when dom0 did not come up.
The first xen-arm run downloads Debian's Xen and dom0 packages into ~/.cache/uni (or
$UNI_CACHE_DIR); later runs start in seconds.")]
pub struct Run {
    /// The target to run (default: `target` in unikernel.toml, else unix).
    #[arg(short, long, value_enum)]
    pub target: Option<Target>,
    /// xen-arm: stop the emulated board after this many seconds (exit code 124). Default: 300;
    /// with --dom0, none.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    #[command(flatten)]
    pub dom0: Dom0Args,
    /// xen-arm: forward 127.0.0.1:HOST to port GUEST of the guest. With --dom0,
    /// HOST:NAME:GUEST: port GUEST of the unikernel deployed as NAME (it keeps its address
    /// across redeploys).
    #[arg(short, long = "publish", value_name = "HOST:[NAME:]GUEST", value_parser = parse_forward)]
    pub publish: Vec<Publish>,
    /// xen-arm: boot dist/<name>.xen and dist/<name>.xl as they are, without configuring or
    /// building (an image built earlier, or by another user).
    #[arg(long, conflicts_with = "dom0")]
    pub no_build: bool,
    /// Build with event tracing compiled in and write the trace to FILE, as Chrome trace-event
    /// JSON (ui.perfetto.dev). unix: when the unikernel ends (Ctrl-C, SIGTERM and a panic
    /// included) and on each SIGUSR1 sent to uni. xen-arm: when the guest has ended (powered
    /// off or crashed; dom0 reads its ring before the domain is destroyed) (docs/tracing.md).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,
    /// Boot arguments for this run: argv on unix; on xen-arm, appended to the xl `extra=`.
    #[arg(last = true, value_name = "BOOT-ARGS")]
    pub args: Vec<String>,
}

/// `uni run --dom0`: the emulated board alone, as a target for `uni deploy`.
#[derive(Debug, Args)]
pub struct Dom0Args {
    /// Start the emulated board with no guest and an SSH server in dom0, reachable on
    /// 127.0.0.1:--ssh-port; run until Ctrl-C or --timeout. No unikernel.toml needed.
    #[arg(long, conflicts_with_all = ["target", "args"])]
    pub dom0: bool,
    /// xen-arm: the board to build for and boot on its emulation, or with --dom0 the board whose
    /// dom0 to start (default: unikernel.toml's, else qemu-virt).
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// With --dom0: the host port forwarded to dom0's SSH server.
    #[arg(long, requires = "dom0", value_name = "PORT", default_value_t = 2222)]
    pub ssh_port: u16,
    /// With --dom0: a public key root may log in with (repeatable; default: every ~/.ssh/id_*.pub).
    #[arg(long, requires = "dom0", value_name = "FILE.pub")]
    pub ssh_key: Vec<PathBuf>,
    /// With --dom0: add this session's host key to ~/.ssh/known_hosts for [localhost]:PORT,
    /// replacing an earlier session's (otherwise uni prints the line to add).
    #[arg(long, requires = "dom0")]
    pub trust_host_key: bool,
}

/// Where `uni deploy`, `ps`, `stop` and `logs` go.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The Xen dom0, [USER@]HOST[:PORT] (default: `host` in unikernel.toml's [deploy]). Your
    /// ~/.ssh/config, agent and known_hosts apply; the user defaults to the board's (root).
    #[arg(long, value_name = "[USER@]HOST[:PORT]")]
    pub host: Option<String>,
    /// The directory in dom0 holding the deployed unikernels (default: [deploy] dir in
    /// unikernel.toml, else the board's, /var/lib/uni).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<String>,
}

/// Build the unikernel for xen-arm, copy it to a Xen dom0 over SSH and start it there.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni deploy --host root@cubie             # build, copy to /var/lib/uni/<name>/, xl create
  uni deploy --host root@localhost:2222    # the emulated board of `uni run --dom0`
  uni deploy --console                     # then attach to its console (leave with Ctrl-])
  uni deploy --replace-disk fresh.img      # and overwrite its disk image in dom0
  uni ps; uni logs; uni stop               # against the same host

A running unikernel of the same name is replaced once the upload is complete and its sha256
checked; if the new one does not start, the previous one is put back and restarted.
A block device's disk image is uploaded on the first deploy, to /var/lib/uni/<name>/ next to
the image, and kept there from then on: a redeploy never overwrites what the guest wrote.
--replace-disk is the explicit way to do that.")]
pub struct Deploy {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The board to build for (default: unikernel.toml's); must match the dom0's Xen.
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Deploy dist/<name>.xen and dist/<name>.xl as they are, without building.
    #[arg(long)]
    pub no_build: bool,
    /// Then show the guest's console from its start and attach to it (`xl console`; leave with
    /// Ctrl-]) until the guest ends.
    #[arg(long)]
    pub console: bool,
    /// Overwrite the disk image the unikernel keeps in dom0 with FILE (a block device's disk
    /// is uploaded once, on the first deploy, and kept from then on). DEVICE= names the block
    /// device when there are several. Repeatable.
    #[arg(long, value_name = "[DEVICE=]FILE")]
    pub replace_disk: Vec<String>,
}

/// List the unikernels deployed on a dom0, and their domains.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni ps --host root@cubie
  uni ps --json | jq -r '.[] | select(.state == \"running\") | .name'")]
pub struct Ps {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Print a JSON array: one object per unikernel with `name`, `domid` and `memory_mib`
    /// (null when stopped), `state` in words, and `xl_state`, xl's state letters.
    #[arg(long)]
    pub json: bool,
}

/// Stop (xl destroy) a deployed unikernel; its files stay in place.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni stop                       # the unikernel of ./unikernel.toml, on its [deploy] host
  uni stop echo --host root@cubie")]
pub struct Stop {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The unikernel (default: unikernel.toml's name).
    pub name: Option<String>,
}

/// Print a deployed unikernel's console log from dom0.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni logs                       # the unikernel of ./unikernel.toml
  uni logs echo -f --host root@cubie    # and follow it

Each boot starts with a line `--- uni: domain ID started TIME ---`.")]
pub struct Logs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The unikernel (default: unikernel.toml's name).
    pub name: Option<String>,
    /// Keep printing what it writes (until Ctrl-C).
    #[arg(short, long)]
    pub follow: bool,
}

/// Print a running unikernel's counters (packets, bytes, connections, HTTP requests by status,
/// heap), which dom0 asks it for through xenstore.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni stats --host root@cubie    # the unikernel of ./unikernel.toml, deployed there
  uni stats static-website --host root@localhost:2222 --json | jq '.\"http.requests.200\"'

A board of `uni run --dom0 --ssh-port PORT` is a host too: --host root@localhost:PORT. On unix,
send the process SIGUSR2 instead: it prints the same table on stderr. The counters are
described in docs/observability.md.")]
pub struct Stats {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The unikernel (default: unikernel.toml's name).
    pub name: Option<String>,
    /// Print one JSON object: each counter's name and its value, a number.
    #[arg(long)]
    pub json: bool,
}

/// Snapshot a deployed unikernel's trace ring, without stopping it, and write it as Chrome
/// trace-event JSON (it must have been built with tracing: `uni build --trace`).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni build --target xen-arm --trace && uni deploy --no-build --host root@cubie
  uni trace --host root@cubie out.json           # the unikernel of ./unikernel.toml
  uni trace web out.json --host root@localhost:2222

dom0 copies the ring from the pages the guest granted it, with uni-trace-dump, which uni
builds for dom0's architecture (armhf or arm64) and copies to <dir>/.tools/ when it is missing
or changed. See docs/tracing.md.")]
pub struct Trace {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The unikernel (default: unikernel.toml's name), then the JSON file to write.
    #[arg(value_name = "[NAME] OUT", num_args = 1..=2, required = true)]
    pub args: Vec<String>,
}

/// Write a new app, ready to run: Cargo.toml, src/lib.rs, unikernel.toml and .gitignore.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni new web --devices console,clock,net,http   # ./web: a hello page on port 8080
  uni new hello                                  # ./hello: console and clock
  uni new notes --devices kv_rw --path ~/src/notes

`start` in src/lib.rs takes the devices in the order given, each with one use to edit;
console comes first when not listed (the uses log to it), and a device another needs (net
for http and dns) comes before it. The app depends on uni's crates by their paths in the
checkout this uni uses (UNI_HOME, else the one it was built from). tls is not written: it
needs your certificate and key (docs/apps.md, \"Adding TLS\").")]
pub struct New {
    /// The app's name: the package, the unikernel and its image (lowercase letters, digits,
    /// `-`, `_`).
    pub name: String,
    /// Device kinds, comma separated, in the order `start` takes them (default: console,clock).
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    pub devices: Option<Vec<String>>,
    /// The directory to write into: new or empty, outside the uni checkout (default: ./NAME).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

/// Print the device graph: each device, its kind, the devices it runs over, the type the app's
/// `start` receives for it, and what builds it on the target.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni describe                       # a table, for the default target
  uni describe --target xen-arm      # what builds each device on Xen
  uni describe --dot | dot -Tsvg > graph.svg

The text lists the devices in the order `start` takes them (declaration order) and then the
order they are built in (each after the devices it uses). --dot writes the same graph in
Graphviz's language: the app's entry point, an edge to each device labelled with its argument's
position, and a dashed edge from each device to each it runs over.")]
pub struct Describe {
    /// The target whose implementations to show (default: `target` in unikernel.toml, else unix).
    #[arg(short, long, value_enum)]
    pub target: Option<Target>,
    /// xen-arm: the board (default: unikernel.toml's, else qemu-virt).
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Write the graph in Graphviz's dot language instead of a table.
    #[arg(long)]
    pub dot: bool,
}

/// Remove `_build/` (the generated crates) and `dist/` (the built images) next to
/// unikernel.toml; nothing else.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni clean                          # next to ./unikernel.toml
  uni -f examples/hello/unikernel.toml clean

Disk images (kv_rw, block), the app's sources and cargo's shared target directory are left
alone. The config file need not be valid.")]
pub struct Clean {}

/// Print a shell completion script.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni completions bash > ~/.local/share/bash-completion/completions/uni
  uni completions zsh > ~/.zfunc/_uni
  uni completions fish > ~/.config/fish/completions/uni.fish")]
pub struct Completions {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `-p HOST:[NAME:]GUEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The port on 127.0.0.1.
    pub host: u16,
    /// The unikernel it reaches (`uni run --dom0`); `None`: the run's guest.
    pub name: Option<String>,
    /// The guest's port.
    pub guest: u16,
}

fn parse_forward(s: &str) -> Result<Publish, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("`{p}` is not a TCP port (1-65535)"))
    };
    match parts[..] {
        [h, g] => Ok(Publish {
            host: port(h)?,
            name: None,
            guest: port(g)?,
        }),
        [h, n, g] => {
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!(
                    "`{n}` is not a unikernel name (letters, digits, `-`, `_`, `.`)"
                ));
            }
            Ok(Publish {
                host: port(h)?,
                name: Some(n.to_string()),
                guest: port(g)?,
            })
        }
        _ => Err(format!(
            "`{s}` is not HOST:GUEST or HOST:NAME:GUEST, like 8080:80 or 8080:website:80"
        )),
    }
}

/// Download and assemble emulated boards into the cache without booting them: Debian's Xen,
/// dom0 kernel and toolstack packages, then the dom0 initramfs. After it, `uni run --target
/// xen-arm` on those boards needs no network.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni fetch                          # the board unikernel.toml names (else qemu-virt)
  uni fetch --board cubieboard2      # a real board: the emulated board that stands for it
  uni fetch --board qemu-virt --board cubieboard2

The cache is ~/.cache/uni, or $UNI_CACHE_DIR. A board already assembled is only checked.")]
pub struct Fetch {
    /// A board to fetch (repeat for several); default: unikernel.toml's, else qemu-virt.
    #[arg(long = "board", value_name = "NAME")]
    pub boards: Vec<String>,
}

/// Run a command inside a running board's LAN: the network namespace of a `uni run --target
/// xen-arm` or `uni run --dom0`, where the board's TAP device is the host's end (10.0.0.254) of
/// 10.0.0.0/24 and guests are reached at their own addresses.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni lan -- curl --cacert pki/ca.pem https://10.0.0.2/   # the only board running
  uni lan --pid 4242 -- ping -c 3 10.0.0.1               # the board of `uni run` process 4242
  uni lan                                                # a shell there ($SHELL, else /bin/sh)

The command runs as root of the board's namespace (its user namespace, when the board runs
without root: only your own uid is mapped there, so it gains nothing outside). While it runs,
the namespace lives on, even after the board has stopped. nsenter does the same: as root `nsenter -t PID -n`,
otherwise `nsenter -t PID -U -n --preserve-credentials`.")]
pub struct Lan {
    /// The `uni run` process whose board to enter (it prints it); default: the only one running.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// The command and its arguments (after `--` when they start with `-`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("uni").chain(args.iter().copied()))
    }

    #[test]
    fn f_is_the_file_before_the_command_and_follow_after_logs() {
        let c = parse(&["-f", "a.toml", "logs", "-f"]).unwrap();
        assert_eq!(c.file(), PathBuf::from("a.toml"));
        assert!(matches!(
            c.command,
            Command::Logs(Logs { follow: true, .. })
        ));
        let c = parse(&["logs", "--file", "b.toml"]).unwrap();
        assert_eq!(c.file(), PathBuf::from("b.toml"));
        assert_eq!(
            parse(&["ps"]).unwrap().file(),
            PathBuf::from("unikernel.toml")
        );
        let e = parse(&["build", "-f", "a.toml"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(parse(&["-f", "a.toml", "--file", "b.toml", "ps"]).is_err());
    }
}
