//! `nimbus`: run an AWS SAM template's serverless system on this machine.

mod chaos;
mod cli;
mod client;
mod cost;
mod definitions;
mod dynref;
mod integrations;
mod invoke;
mod logs;
mod otlp;
mod release;
mod samconfig;
mod states;
mod up;
mod watch;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("NIMBUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs redirected to a file stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let result = match cli.command {
        cli::Command::Validate(args) => up::validate(&args),
        cli::Command::Up(args) => run_async(up::up(*args)),
        cli::Command::Invoke(args) => run_async(invoke::invoke(args)),
        cli::Command::Logs(args) => logs::logs(&args),
        cli::Command::Cost(args) => run_async(cost::cost(args)),
        cli::Command::Chaos(args) => run_async(chaos::chaos(args)),
        cli::Command::Deployments(args) => run_async(release::list(args)),
        cli::Command::Deploy(args) => run_async(release::deploy(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run_async<F>(fut: F) -> anyhow::Result<std::process::ExitCode>
where
    F: std::future::Future<Output = anyhow::Result<std::process::ExitCode>>,
{
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}
