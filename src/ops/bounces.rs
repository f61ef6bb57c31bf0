//! `newsletter bounces ingest | fetch | parse`: what comes back, by hand or from an
//! MTA's pipe, through the same pipeline as `serve` (see `crate::inbound`).

use std::io::Write;

use anyhow::{Context, bail};

use crate::{settings::Settings, startup::open_store};

/// `newsletter bounces ingest`: one message from standard input, through the pipeline.
pub async fn ingest() -> anyhow::Result<()> {
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw)
        .context("Failed to read the message from standard input")?;
    if raw.is_empty() {
        bail!("Standard input was empty: there is no message to take");
    }
    let settings = std::sync::Arc::new(Settings::load()?);
    let store = open_store(&settings).await?;
    let ring = crate::secrets::load(&settings, store.as_ref()).await?;
    let intake = crate::inbound::intake::Intake::new(store.clone(), ring, settings);
    let taken = intake.take_mail("pipe", &raw).await;
    store.close().await;
    taken.map(|_| ())
}

/// `newsletter bounces fetch`: one pass over the bounce mailbox.
pub async fn fetch(settings: Settings) -> anyhow::Result<()> {
    let imap = settings
        .bounce_imap
        .clone()
        .context("BOUNCE_IMAP_URL is not set: there is no bounce mailbox to read")?;
    let settings = std::sync::Arc::new(settings);
    let store = open_store(&settings).await?;
    let ring = crate::secrets::load(&settings, store.as_ref()).await?;
    let intake = crate::inbound::intake::Intake::new(store.clone(), ring, settings);
    let clock = std::time::Instant::now();
    let mut session = crate::inbound::imap::connect(&imap).await?;
    let drained = crate::inbound::imap::drain(&mut session, &intake).await;
    let _ = session.logout().await;
    store.close().await;
    let drained = drained?;
    println!(
        "{}",
        serde_json::json!({
            "taken": drained.taken,
            "left": drained.left,
            "seconds": clock.elapsed().as_secs_f64(),
        })
    );
    if drained.left > 0 {
        bail!(
            "{} messages could not be stored; they stay in the mailbox",
            drained.left
        );
    }
    Ok(())
}

/// `newsletter bounces parse`: each file's reading as a line of JSON. A file that
/// cannot be read is said on standard error, and the rest are still read.
pub fn parse(files: &[std::path::PathBuf]) -> anyhow::Result<()> {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        file: String,
        #[serde(flatten)]
        reading: &'a crate::inbound::Reading,
        copy: Option<crate::inbound::return_path::CopyRef>,
    }
    // The copy is looked up only with what the settings give: no database.
    let lookup = Settings::load().ok().and_then(|settings| {
        let mailbox = settings.bounce_address.clone()?;
        let ring = crate::secrets::ring_without_database(&settings).ok()??;
        Some((mailbox, ring))
    });
    let mut unreadable = 0;
    for file in files {
        let read = if file.as_os_str() == "-" {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw).map(|_| raw)
        } else {
            std::fs::read(file)
        };
        let raw = match read {
            Ok(raw) => raw,
            Err(err) => {
                eprintln!("{}: {err}", file.display());
                unreadable += 1;
                continue;
            }
        };
        let (reading, copy) = match &lookup {
            Some((mailbox, ring)) => crate::inbound::read_for(&raw, mailbox, ring),
            None => (crate::inbound::read(&raw), None),
        };
        let line = Line {
            file: file.display().to_string(),
            reading: &reading,
            copy,
        };
        // A reader that stops early (`| head`) ends the run, quietly.
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{}", serde_json::to_string(&line)?) {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            written => written.context("Failed to write to standard output")?,
        }
    }
    anyhow::ensure!(
        unreadable == 0,
        "{unreadable} of the files could not be read"
    );
    Ok(())
}
