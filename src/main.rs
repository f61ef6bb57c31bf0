use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Parser, Subcommand};
use newsletter::{
    audience::csv,
    audience::import,
    audience::subscriber::SubscriberEmail,
    settings::Settings,
    staff::{self, Role, StaffUser},
    startup::{Application, open_store},
    store::{Creation, ImportStart, Removal, Store},
    telemetry, tokens,
};
use uuid::Uuid;

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
    /// Write a consistent copy of the database to FILE while the service runs: SQLite
    /// with VACUUM INTO (then opened and checked), PostgreSQL with pg_dump's custom
    /// format. FILE must not exist; it is made readable by its owner only. The
    /// database is never migrated first. Keep the key file with it (see README.md).
    Backup {
        /// The file to write, such as /var/backups/newsletter-2026-12-04.db.
        file: std::path::PathBuf,
    },
    /// Check the settings, the database, the key file, the relay (without sending), the
    /// DKIM key and its DNS record, the bounce mailbox and that PUBLIC_URL answers: one
    /// line a check, with what to do when one fails. Exits 1 if any failed.
    Doctor,
    /// Manage access for staff.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Read what comes back from the mail world: bounces, complaints, auto-replies.
    Bounces {
        #[command(subcommand)]
        command: BouncesCommand,
    },
}

#[derive(Subcommand)]
enum BouncesCommand {
    /// Say what each message is, one JSON line each; nothing is stored.
    ///
    /// Each line has: `kind` (hard, soft, warning, complaint, auto-reply, unsubscribe
    /// or unknown), `recipients` (the addresses it is about), `status` (e.g. 5.1.1),
    /// `diagnostic` (the receiving system's words), `message_id` (of the mail it
    /// quotes), `read_as` (how it was read) and `copy`: the copy it is about, from the
    /// address it came to or the Message-ID it quotes. `copy` needs BOUNCE_ADDRESS and
    /// the secret key (SECRET_KEY or the key file); without them it is null.
    Parse {
        /// Raw messages (`.eml`), one a file; `-` reads one from standard input.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Take one message from standard input, store it and act on it: for an MTA's
    /// pipe transport (see README.md). Exits 0 once it is stored (or was stored
    /// before), and 75 (EX_TEMPFAIL, "try again later") when it could not be, such as
    /// when the database cannot be reached, so that the MTA keeps it and retries.
    Ingest,
    /// Read the bounce mailbox (BOUNCE_IMAP_URL) once, as `serve` does all the time,
    /// and say how many messages were taken: to check the settings, or to catch up.
    Fetch,
}

/// EX_TEMPFAIL (sysexits.h): an MTA keeps the message and tries again later.
const EX_TEMPFAIL: u8 = 75;

#[derive(Subcommand)]
enum AdminCommand {
    /// Make an API token for the staff API; it is printed once, as the last line.
    CreateToken {
        /// A name to know the token by (who or what uses it).
        #[arg(value_parser = token_name)]
        name: String,
    },
    /// Revoke the API token with this name.
    RevokeToken {
        #[arg(value_parser = token_name)]
        name: String,
    },
    /// Make a staff account for the web UI. Asks for the password, or reads it from
    /// the first line of standard input when that is not a terminal.
    CreateUser {
        /// The address they sign in with.
        email: String,
        /// `editor` writes and schedules issues; `admin` may also manage users,
        /// tokens, imports and erasure.
        #[arg(long, value_parser = ["admin", "editor"])]
        role: String,
    },
    /// Import people from a CSV file with a header line (`email` and `name`, and
    /// `organisation`, `locality` and `status` if you have them). Each row is checked
    /// as the sign-up form checks it; refused rows are listed with the reason. People
    /// who unsubscribed are never subscribed again. A running count on a terminal.
    ImportSubscribers {
        /// The CSV file (UTF-8; commas, semicolons or tabs).
        file: std::path::PathBuf,
        /// Where these people's details came from and why they may be mailed: the
        /// lawful basis, kept with the import and shown in each person's ledger.
        #[arg(long)]
        source_note: String,
        /// `confirmed` subscribes them now; `invite` sends each a confirmation email,
        /// and subscribes only those who confirm.
        #[arg(long, value_parser = ["confirmed", "invite"])]
        mode: String,
        /// Check the file and say what would happen, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write every subscriber of the list as CSV, with a running count on a terminal.
    ExportSubscribers {
        /// The file to write (standard output if not given).
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

fn token_name(raw: &str) -> Result<String, String> {
    tokens::api_token_name(raw)
        .map(str::to_owned)
        .ok_or_else(|| format!("a token's name is {}", tokens::API_TOKEN_NAME_RULE))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    if let Command::Bounces {
        command: BouncesCommand::Ingest,
    } = &cli.command
    {
        return match newsletter::ops::bounces::ingest().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("Error (the message was not stored; try again later): {err:#}");
                ExitCode::from(EX_TEMPFAIL)
            }
        };
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Reading bounces needs no settings, nor a database.
    if let Command::Bounces {
        command: BouncesCommand::Parse { files },
    } = &cli.command
    {
        return newsletter::ops::bounces::parse(files);
    }
    let settings = match (Settings::load(), &cli.command) {
        (Ok(settings), _) => settings,
        (Err(err), Command::Doctor) => {
            println!(
                "FAIL  settings       {err:#} -> fix the setting it names (see README.md, Settings)"
            );
            bail!("the settings cannot be read");
        }
        (Err(err), _) => return Err(err),
    };
    match cli.command {
        Command::Doctor => {
            let lines = newsletter::ops::doctor::run(&settings, |line| println!("{line}")).await;
            let failed = lines
                .iter()
                .filter(|l| l.verdict == newsletter::ops::doctor::Verdict::Fail)
                .count();
            if failed > 0 {
                bail!("{failed} of the checks failed");
            }
            Ok(())
        }
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
        Command::Backup { file } => {
            let done = newsletter::ops::backup::backup(&settings.database_url, &file).await?;
            println!("{done}");
            if let Some(key_file) = settings
                .key_file()
                .filter(|_| settings.secret_key.is_none())
            {
                println!(
                    "Keep the key file {} with it: the links already sent need it.",
                    key_file.display()
                );
            }
            Ok(())
        }
        Command::Admin { command } => {
            let store = open_store(&settings).await?;
            let done = admin(store.as_ref(), &settings, command).await;
            store.close().await;
            done
        }
        Command::Bounces {
            command: BouncesCommand::Fetch,
        } => newsletter::ops::bounces::fetch(settings).await,
        Command::Bounces { .. } => unreachable!("handled before the settings are read"),
    }
}

async fn admin(
    store: &dyn Store,
    settings: &Settings,
    command: AdminCommand,
) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateToken { name } => {
            let token = tokens::generate_api_token();
            let hash = tokens::sha256(token.as_bytes());
            let made = store
                .create_api_token(Uuid::now_v7(), &name, &hash, Utc::now())
                .await?;
            if made == Creation::Taken {
                bail!(
                    "There is already a token called {name:?}: revoke it first, or choose another name."
                );
            }
            println!("Created the API token {name:?}. It is shown only now; keep it safe:");
            println!("{token}");
        }
        AdminCommand::RevokeToken { name } => {
            if store.revoke_api_token(&name, Utc::now()).await? == Removal::NotFound {
                bail!("There is no live token called {name:?}.");
            }
            println!("Revoked the API token {name:?}.");
        }
        AdminCommand::ExportSubscribers { output } => {
            export_subscribers(store, output).await?;
        }
        AdminCommand::ImportSubscribers {
            file,
            source_note,
            mode,
            dry_run,
        } => {
            let mode = import::Mode::parse(&mode).context("The mode is confirmed or invite")?;
            import_subscribers(store, settings, &file, source_note, mode, dry_run).await?;
        }
        AdminCommand::CreateUser { email, role } => {
            let email = SubscriberEmail::parse(&email).map_err(anyhow::Error::msg)?;
            let user = StaffUser {
                id: Uuid::now_v7(),
                email: staff::normalise_email(email.as_str()),
                role: Role::parse(&role)?,
            };
            let password = read_password()?;
            if let Some(problem) = staff::password_problem(&password) {
                bail!("{problem}");
            }
            let hash = tokio::task::spawn_blocking(move || staff::hash_password(&password))
                .await
                .context("Hashing the password panicked")??;
            if store.create_staff_user(&user, &hash, Utc::now()).await? == Creation::Taken {
                bail!("There is already a staff user {}.", user.email);
            }
            println!(
                "Created the {} {}: they can sign in at /admin/login.",
                user.role.as_str(),
                user.email
            );
        }
    }
    Ok(())
}

/// Every subscriber, a page at a time, as `audience::csv` writes them.
async fn export_subscribers(
    store: &dyn Store,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let list = store.default_list().await?;
    let total = store
        .subscribers(&newsletter::store::SubscriberQuery::search(
            list.id, "", 0, 0,
        ))
        .await?
        .total;
    let mut out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("Failed to create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let progress = std::io::stderr().is_terminal();
    out.write_all(&csv::header()?)
        .context("Failed to write the export")?;
    let (mut after, mut written) = (String::new(), 0usize);
    loop {
        let page = store.subscribers_after(list.id, &after, csv::PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.email.clone();
        out.write_all(&csv::rows(&page)?)
            .context("Failed to write the export")?;
        written += page.len();
        if progress {
            eprint!("\rExported {written} of {total}");
        }
    }
    out.flush().context("Failed to write the export")?;
    if progress {
        eprintln!();
    }
    let to = output.map_or("standard output".to_owned(), |p| p.display().to_string());
    eprintln!("Exported {written} subscribers to {to}.");
    Ok(())
}

/// Checks the file, records the import (the same record the web UI makes), and
/// applies it unless this is a dry run.
async fn import_subscribers(
    store: &dyn Store,
    settings: &Settings,
    file: &std::path::Path,
    source_note: String,
    mode: import::Mode,
    dry_run: bool,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if let Some(problem) = import::source_note_problem(&source_note) {
        bail!("--source-note: {problem}");
    }
    let data = std::fs::read(file).with_context(|| format!("Failed to read {}", file.display()))?;
    let parsed = import::read_csv(&data, mode)
        .map_err(|problem| anyhow::anyhow!("{}: {problem}", file.display()))?;
    if !parsed.ignored_columns.is_empty() {
        eprintln!(
            "Columns not imported: {}.",
            parsed.ignored_columns.join(", ")
        );
    }
    let list = store.default_list().await?;
    let record = import::ImportRecord {
        id: Uuid::now_v7(),
        list_id: list.id,
        created_by: "command line".into(),
        file_name: file
            .file_name()
            .map_or("import.csv".into(), |n| n.to_string_lossy().into_owned()),
        source_note: source_note.trim().to_owned(),
        mode,
        created_at: Utc::now(),
        applied_at: None,
    };
    let secret = newsletter::secrets::load(settings, store).await?;
    import::create(store, &secret, &record, parsed.rows).await?;
    let counts = store.import_counts(record.id).await?;
    let count = |status| counts.of(status);
    let ready = count(import::RowStatus::Ready);
    if dry_run {
        print_refusals(store, record.id).await?;
        store.discard_import(record.id).await?;
        println!(
            "Dry run, nothing changed: {ready} to import, {} already subscribed, {} refused.",
            count(import::RowStatus::Unchanged),
            count(import::RowStatus::Refused),
        );
        return Ok(());
    }
    anyhow::ensure!(
        store.start_import(record.id, Utc::now()).await? == ImportStart::Started,
        "The import was started twice"
    );
    let inviter = import::Inviter {
        secret: &secret,
        list: &list,
        ttl: settings.confirmation_ttl,
    };
    let progress = std::io::stderr().is_terminal();
    import::apply(store, &record, &inviter, |done| {
        if progress {
            eprint!("\rImported {done} of {ready}");
        }
    })
    .await?;
    if progress {
        eprintln!();
    }
    print_refusals(store, record.id).await?;
    let counts = store.import_counts(record.id).await?;
    println!("Imported {}: {}.", file.display(), counts.summary());
    if mode == import::Mode::Invite {
        println!("The confirmation emails go out from the running service.");
    }
    Ok(())
}

/// Lists the import's refused rows on standard error, with the reason for each.
async fn print_refusals(store: &dyn Store, id: Uuid) -> anyhow::Result<()> {
    let mut after_line = 0;
    loop {
        let rows = store
            .import_rows(
                id,
                Some(import::RowStatus::Refused),
                after_line,
                0,
                import::BATCH,
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after_line = last.line;
        for row in &rows {
            eprintln!(
                "Line {}: refused: {}",
                row.line,
                row.reason.as_deref().unwrap_or("")
            );
        }
    }
}

/// The new password: typed twice, unseen, at a terminal; else stdin's first line.
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let read_line = || -> anyhow::Result<String> {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("Failed to read the password")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    if !stdin.is_terminal() {
        return read_line();
    }
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
        echo(false);
        let line = read_line();
        echo(true);
        eprintln!();
        line
    };
    let password = ask("Password (12 characters or more): ")?;
    if ask("The same again: ")? != password {
        bail!("The two passwords differ.");
    }
    Ok(password)
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
