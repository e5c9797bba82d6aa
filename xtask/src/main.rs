//! Cloudkeep developer tasks: `cargo xtask bench ingest|agent|alerts|backup`.
//!
//! With the alias `xtask = "run --release -p xtask --"` in `.cargo/config.toml`:
//!
//! - `cargo xtask bench ingest [--quick] [--json out.json]`: the same pre-built
//!   remote_write payloads go to Prometheus, VictoriaMetrics and `cloudkeep server`
//!   in turn; CPU, peak RSS, bytes on disk and stored sample counts are compared.
//! - `cargo xtask bench agent [--duration 150 | --quick]`: `cloudkeep agent`,
//!   collectd and prometheus-node-exporter run side by side; RSS and CPU compared.
//! - `cargo xtask bench alerts [--quick]`: alert latency from a crossing sample to the email on
//!   a real SMTP server, `cloudkeep server` vs Prometheus + Alertmanager; rule evaluations per
//!   CPU-second in-process and in the server.
//! - `cargo xtask bench backup [--quick]` (as root): full backups, restores and WAL archiving of a
//!   PostgreSQL 15 cluster, Cloudkeep vs pgBackRest 2.45, with both tools' figures and ratios.
//!
//! Everything listens on and talks to 127.0.0.1 only; every loop is bounded in
//! count and time. `--only` picks contestants, `--cloudkeep-bin` skips the build.

mod bench;
mod child;
mod cloudkeep;
mod http;
mod payload;
mod procfs;
mod table;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Cloudkeep developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Benchmarks against reference tools (loopback only).
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// remote_write ingestion: cloudkeep server vs Prometheus and VictoriaMetrics.
    Ingest(bench::ingest::Args),
    /// Host-agent overhead: cloudkeep agent vs collectd and prometheus-node-exporter.
    Agent(bench::agent::Args),
    /// Alert latency vs Prometheus + Alertmanager, and rule evaluation cost.
    Alerts(bench::alerts::Args),
    /// PostgreSQL backup, restore and WAL archiving: Cloudkeep vs pgBackRest 2.45.
    Backup(bench::backup::Args),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Top::Bench { which } => match which {
            Bench::Ingest(args) => bench::ingest::run(&args),
            Bench::Agent(args) => bench::agent::run(&args),
            Bench::Alerts(args) => bench::alerts::run(&args),
            Bench::Backup(args) => bench::backup::run(&args),
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
