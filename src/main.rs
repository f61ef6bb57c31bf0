use anyhow::Context;
use clap::{Parser, Subcommand};
use newsletter::{
    settings::Settings,
    startup::{Application, open_store},
    telemetry,
};

/// A self-hosted newsletter service. Settings come from the environment (see README.md).
#[derive(Parser)]
#[command(name = "newsletter", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server and the mail worker (migrates first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init();
    let settings = Settings::load()?;
    match cli.command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(address = %app.local_addr(), "Listening");
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            let store = open_store(&settings).await?;
            store.close().await;
            tracing::info!("Migrations applied");
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c()
            .await
            .context("Failed to listen for Ctrl-C")
            .ok();
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "Failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("Shutting down");
}
