//! A Xen dom0 reached over SSH, for `uni deploy`, `ps`, `stop` and `logs`.
//!
//! Every connection is the system OpenSSH client run through xshell, so the user's
//! `~/.ssh/config`, agent and known_hosts apply. Host keys are always checked: `BatchMode=yes`
//! makes an unknown or changed key an error instead of a prompt, and `ConnectTimeout` makes an
//! unreachable host fail in seconds. dom0's side is `templates/deploy/dom0.sh`, sent to `sh -s`
//! with one function call appended; it answers in `uni: <key> <value>` lines.

use std::fmt;
use std::process::ExitStatus;

use anyhow::{bail, Context, Result};

/// dom0's side of the protocol.
pub const SCRIPT: &str = include_str!("../../templates/deploy/dom0.sh");

/// An ssh_config file to use instead of ~/.ssh/config (`ssh -F`): ssh finds `~` through the
/// password database, not `$HOME`, so this is how a test or a CI job brings its own keys and
/// known_hosts.
pub const SSH_CONFIG_VAR: &str = "UNI_SSH_CONFIG";

/// Seconds ssh waits for the TCP connection and the SSH handshake.
pub const CONNECT_TIMEOUT: u32 = 10;

pub use crate::config::HostSpec;

/// What dom0's script answered: its `uni: key value` lines.
#[derive(Debug, Default)]
pub struct Reply {
    pub lines: Vec<(String, String)>,
}

impl Reply {
    fn parse(stdout: &str) -> Reply {
        let lines = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("uni: "))
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap_or((l, ""));
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        Reply { lines }
    }

    /// The value of the first line with `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The values of every line with `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A failure dom0's script reported (`uni-error: <kind> <text>`), with what it had said before.
#[derive(Debug)]
pub struct ScriptError {
    pub kind: String,
    pub text: String,
    pub reply: Reply,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ScriptError {}

/// One dom0.
pub struct Remote {
    pub spec: HostSpec,
    sh: xshell::Shell,
}

impl Remote {
    pub fn new(spec: HostSpec) -> Result<Remote> {
        Ok(Remote {
            spec,
            sh: xshell::Shell::new()?,
        })
    }

    /// ssh's options and destination.
    fn ssh_args(&self, tty: bool) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        if let Some(file) = std::env::var_os(SSH_CONFIG_VAR).filter(|f| !f.is_empty()) {
            a.push("-F".into());
            a.push(file.to_string_lossy().into_owned());
        }
        a.extend::<[String; 8]>([
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={CONNECT_TIMEOUT}"),
            "-o".into(),
            "ServerAliveInterval=10".into(),
            "-o".into(),
            "ServerAliveCountMax=3".into(),
        ]);
        if tty {
            a.push("-t".into());
        }
        if let Some(p) = self.spec.port {
            a.push("-p".into());
            a.push(p.to_string());
        }
        if let Some(u) = &self.spec.user {
            a.push("-l".into());
            a.push(u.clone());
        }
        a.push("--".into());
        a.push(self.spec.host.clone());
        a
    }

    /// Runs `remote` (a shell command line) with `stdin`; returns its stdout.
    fn ssh(&self, remote: &str, stdin: &[u8]) -> Result<String> {
        let args = self.ssh_args(false);
        let out = xshell::cmd!(self.sh, "ssh {args...} {remote}")
            .quiet()
            .ignore_status()
            .stdin(stdin)
            .output()
            .context("running ssh (Debian: apt-get install openssh-client)")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => Ok(stdout),
            // 255: ssh's own failure (connection, host key, authentication)
            Some(255) if !stdout.contains("uni-error: ") => Err(ssh_failure(&self.spec, &stderr)),
            _ => {
                if let Some(e) = stdout.lines().find_map(|l| l.strip_prefix("uni-error: ")) {
                    let (kind, text) = e.split_once(' ').unwrap_or((e, ""));
                    return Err(ScriptError {
                        kind: kind.into(),
                        text: text.into(),
                        reply: Reply::parse(&stdout),
                    }
                    .into());
                }
                bail!(
                    "`{remote}` failed on {} ({}): {}",
                    self.spec,
                    out.status,
                    last_lines(&stderr)
                )
            }
        }
    }

    /// Runs `call` (a function of [`SCRIPT`] and its arguments, each quoted with [`quote`]) in
    /// dom0, after `prelude` (more shell, such as a here-document).
    pub fn call(&self, prelude: &str, call: &str) -> Result<Reply> {
        Ok(Reply::parse(&self.raw_call(prelude, call)?))
    }

    /// [`Remote::call`], returning all it printed.
    pub fn raw_call(&self, prelude: &str, call: &str) -> Result<String> {
        self.ssh("sh -s", script(prelude, call).as_bytes())
    }

    /// [`Remote::call`] with its output streamed to ours, until it ends (`tail -f`).
    pub fn stream(&self, call: &str) -> Result<ExitStatus> {
        let mut child = std::process::Command::new("ssh")
            .args(self.ssh_args(false))
            .arg("sh -s")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .context("running ssh")?;
        let mut stdin = child.stdin.take().expect("piped");
        std::io::Write::write_all(&mut stdin, script("", call).as_bytes())?;
        drop(stdin);
        Ok(child.wait()?)
    }

    /// Writes `data` to `path` in dom0.
    pub fn upload(&self, data: &[u8], path: &str) -> Result<()> {
        self.ssh(&format!("cat > {}", quote(path)), data)
            .map(drop)
            .map_err(|e| {
                let text = format!("{e:#}");
                if text.contains("No space left") {
                    anyhow::anyhow!("no space left on {} for {path}: {text}", self.spec)
                } else {
                    e.context(format!("uploading {path} to {}", self.spec))
                }
            })
    }

    /// Runs `remote` with a terminal, stdin and stdout the user's (`xl console`).
    pub fn interactive(&self, remote: &str) -> Result<ExitStatus> {
        let args = self.ssh_args(true);
        let st = std::process::Command::new("ssh")
            .args(args)
            .arg(remote)
            .status()
            .context("running ssh")?;
        Ok(st)
    }
}

fn script(prelude: &str, call: &str) -> String {
    format!("{SCRIPT}\n{prelude}{call}\n")
}

/// `s` as one word for dom0's shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// What an ssh that exited 255 means, from its stderr.
pub fn ssh_failure(spec: &HostSpec, stderr: &str) -> anyhow::Error {
    let e = stderr.to_ascii_lowercase();
    let said = last_lines(stderr);
    let port = spec.port.map(|p| format!(" -p {p}")).unwrap_or_default();
    if e.contains("remote host identification has changed") {
        anyhow::anyhow!(
            "the host key of {spec} has CHANGED since you last connected; uni will not connect. If the \
             dom0 was reinstalled (or the emulated board restarted), remove the old key with \
             `ssh-keygen -R` and check the new one (ssh said: {said})"
        )
    } else if e.contains("host key verification failed")
        || e.contains("no ") && e.contains("host key is known")
    {
        anyhow::anyhow!(
            "the host key of {spec} is not in your known_hosts, so uni will not connect (it never skips \
             host-key checking). Check the key's fingerprint and trust it: connect once with \
             `ssh{port} {}`, or add the line `uni run --dom0` prints (ssh said: {said})",
            spec.host
        )
    } else if e.contains("permission denied") {
        anyhow::anyhow!(
            "{spec} refused your SSH keys (ssh said: {said}); for the emulated board, `uni run --dom0` \
             installs ~/.ssh/id_*.pub or --ssh-key"
        )
    } else if [
        "connection refused",
        "timed out",
        "no route to host",
        "could not resolve",
        "network is unreachable",
        "connection closed",
        "connection reset",
    ]
    .iter()
    .any(|w| e.contains(w))
    {
        anyhow::anyhow!("cannot reach {spec} over SSH (ssh said: {said})")
    } else {
        anyhow::anyhow!("ssh to {spec} failed (ssh said: {said})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_replies() {
        let r = Reply::parse(
            "noise\nuni: domid 4\nuni: ip 10.0.0.100\nuni: unikernel a 1\nuni: unikernel b -\n",
        );
        assert_eq!(r.get("domid"), Some("4"));
        assert_eq!(r.get("ip"), Some("10.0.0.100"));
        assert_eq!(r.all("unikernel").collect::<Vec<_>>(), ["a 1", "b -"]);
        assert_eq!(r.get("state"), None);
    }

    #[test]
    fn explains_ssh_failures() {
        let h: HostSpec = "root@localhost:2222".parse().unwrap();
        let msg = |s: &str| ssh_failure(&h, s).to_string();
        assert!(msg("No ED25519 host key is known for [localhost]:2222 and you have requested strict checking.\nHost key verification failed.\n").contains("not in your known_hosts"));
        assert!(
            msg("ssh: connect to host localhost port 2222: Connection refused\n")
                .starts_with("cannot reach root@localhost:2222")
        );
        assert!(msg("root@localhost: Permission denied (publickey).\n")
            .contains("refused your SSH keys"));
        assert!(
            msg("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\n").contains("CHANGED")
        );
    }
}
