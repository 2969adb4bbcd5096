//! `hawker-bench`: Hawker against the standard ways to build the same thing, on the same machine,
//! in the same run. A crate and binary of its own, so the product carries none of its clients and
//! baselines; it runs the server as `hawker-bench serve`, the very code of `hawker serve`
//! (`hawker_server::serve`), in a process of its own. Every scenario prints a Markdown table. The herd and the fan-out are driven
//! by one lean client ([`client`]), append their table to the run log (`bench/runs/log.md`) with the machine and
//! the exact command (unless `--smoke` or `--no-record`), and have a `--smoke` size small enough
//! for CI, so their harness never rots.
//!
//! - [`herd`]: a flash-sale herd over HTTP against PostgreSQL row locks and Redis + Lua
//!   ([`baseline`] serves those designs).
//! - [`fanout`]: one live room fanned out to thousands of WebSocket viewers, against Socket.IO.
//! - [`auction`]: bids decided and broadcast per second.
//! - [`video`]: WebRTC fan-out against live777.
//! - [`login`]: a log-in flood: memory, page latency, and known against unknown e-mails.
//! - [`soak`]: one live show for an hour or more: whether speed and memory stay flat.
//!
//! Timings are reported, never asserted: the machines are shared and noisy, so tables quote
//! medians over runs and ratios to the baselines.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

pub mod auction;
pub mod baseline;
pub mod client;
pub mod fanout;
pub mod hawker;
pub mod herd;
pub mod login;
pub mod soak;
pub mod video;

/// Refuses any argument that is not one of the scenario's flags, so a mistyped flag stops the run
/// instead of silently running (and recording) the default one. `values` take a value after them;
/// `switches` stand alone.
pub fn check_flags(
    scenario: &str,
    args: &[&str],
    values: &[&str],
    switches: &[&str],
) -> anyhow::Result<()> {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if values.contains(arg) {
            anyhow::ensure!(rest.next().is_some(), "{arg} needs a value");
        } else if !switches.contains(arg) {
            anyhow::bail!(
                "hawker-bench {scenario} does not know {arg:?}; it takes {} (see hawker-bench --help)",
                values
                    .iter()
                    .chain(switches)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    Ok(())
}

/// `--name N` as a number, or `default`.
pub fn flag(args: &[&str], name: &str, default: usize) -> anyhow::Result<usize> {
    match args.iter().position(|a| *a == name) {
        Some(i) => args
            .get(i + 1)
            .context("flag needs a value")?
            .parse()
            .with_context(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

/// `--name VALUE` as text, if given.
pub fn text_flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| *a == name)?;
    args.get(i + 1).copied()
}

/// A value at quantile `q` (0..=1) of unsorted samples.
pub fn quantile<T: Copy + Ord + Default>(samples: &mut [T], q: f64) -> T {
    if samples.is_empty() {
        return T::default();
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i]
}

/// The median of several runs' values.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One line naming the machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} × {model}, {mem_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}

/// The run log, from the repository root: every full run's table, newest last.
pub const RUN_LOG: &str = "bench/runs/log.md";

/// Appends a finished table to the run log ([`RUN_LOG`]), with the machine and the command
/// (`hawker-bench <scenario> <args…>`). `BENCHMARKS.md` quotes the latest by hand.
pub fn record(title: &str, scenario: &str, args: &[&str], table: &str) -> anyhow::Result<()> {
    let path = std::path::Path::new(RUN_LOG);
    let mut text = String::new();
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        text.push_str("# Benchmark run log\n\nAppended by `hawker-bench` after every full-size run, newest last.\n");
    }
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    text.push_str(&format!(
        "\n### {title}, {date}\n\n**Machine**: {}. **Command**: `{}`\n\n{table}\n",
        machine(),
        [&["hawker-bench", scenario], args].concat().join(" ")
    ));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())?;
    println!("appended to {}", path.display());
    Ok(())
}

/// Whether this run should be appended to the run log.
pub fn recording(args: &[&str]) -> bool {
    !args.contains(&"--smoke") && !args.contains(&"--no-record")
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts TCP connections on `addr`.
pub async fn wait_listening(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{what} did not start listening on {addr}")
}

/// Starts Hawker as the server under measurement (`hawker-bench serve ARGS…`, the code of
/// `hawker serve`) on a free port of this machine with `data_dir`, its media on a free port, and
/// `settings` as `HAWKER_*` variables on top; returns once it accepts connections.
pub async fn spawn_hawker(
    data_dir: &std::path::Path,
    args: &[&str],
    settings: &[(&str, &str)],
) -> anyhow::Result<(Server, SocketAddr)> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg("serve")
        .args(args)
        .env("HAWKER_LISTEN", addr.to_string())
        .env("HAWKER_DATA_DIR", data_dir)
        .env("HAWKER_MEDIA_PORT", "0")
        .env("RUST_LOG", "warn")
        .envs(settings.iter().copied());
    let server = Server::spawn("hawker serve", &mut command)?;
    wait_listening(addr, "hawker serve").await?;
    Ok((server, addr))
}

/// A server process under measurement: CPU time and memory come from `/proc/<pid>`, and dropping
/// it kills it with SIGKILL (`kill -9`: what it acknowledged must already be durable).
pub struct Server {
    pub name: String,
    pub child: std::process::Child,
}

impl Server {
    pub fn spawn(name: &str, command: &mut std::process::Command) -> anyhow::Result<Self> {
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.into(),
            child,
        })
    }

    /// CPU seconds (user + system) spent so far.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Resident memory in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// Resident memory that is the process's own (heap and stacks), in bytes: the resident
    /// memory less the pages of files it maps, which the kernel can drop at will.
    pub fn anon_rss_bytes(&self) -> u64 {
        self.status_bytes("RssAnon:")
    }

    /// Bytes the process has caused to be written to storage so far (`write_bytes` of
    /// `/proc/<pid>/io`: its own writes and the file pages it dirtied, as the disk will see them).
    pub fn written_bytes(&self) -> u64 {
        let io =
            std::fs::read_to_string(format!("/proc/{}/io", self.child.id())).unwrap_or_default();
        io.lines()
            .find_map(|l| l.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a `/proc/.../stat` file, in seconds (clock ticks are 100 Hz on Linux).
pub fn proc_cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds this process has spent (the load client).
pub fn own_cpu_seconds() -> f64 {
    proc_cpu_seconds("/proc/self/stat")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_medians() {
        let mut v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&mut v, 0.5), 51);
        assert_eq!(quantile(&mut v, 0.99), 99);
        assert_eq!(quantile(&mut v, 1.0), 100);
        assert_eq!(quantile::<u32>(&mut [], 0.5), 0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn proc_stat_is_readable() {
        assert!(own_cpu_seconds() >= 0.0);
    }
}
