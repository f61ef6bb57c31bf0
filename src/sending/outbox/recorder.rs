//! Writes outcomes as they come in (group commit): one task takes every outcome waiting,
//! writes them in one statement per queue, and goes again. An outcome is in the
//! database a moment after the relay's answer, so a crash sends again only what was
//! in flight, not a whole batch. A write that fails is tried again, and nothing taken
//! is dropped; the channel is bounded, so senders wait while the database does.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::store::{DeliveryResult, OutboxResult, Store};

/// The most outcomes one write takes.
const MOST_AT_ONCE: usize = 1024;
/// How long the writer waits for more outcomes once one has come.
const LINGER: Duration = Duration::from_millis(2);
/// How often, at most, finished issues are marked sent while copies keep coming.
const FINISH_EVERY: Duration = Duration::from_secs(1);

enum Entry {
    Outbox(OutboxResult),
    Delivery(DeliveryResult),
    /// Answered once everything sent before it is written (and finished issues marked).
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(super) struct Recorder {
    entries: mpsc::Sender<Entry>,
}

impl Recorder {
    /// Starts the writer; it ends once every `Recorder` is dropped and all is written.
    pub(super) fn start(store: Arc<dyn Store>) -> Self {
        let (entries, taken) = mpsc::channel(4 * MOST_AT_ONCE);
        tokio::spawn(write_all(store, taken));
        Self { entries }
    }

    pub(super) async fn outbox(&self, result: OutboxResult) {
        self.put(Entry::Outbox(result)).await;
    }

    pub(super) async fn delivery(&self, result: DeliveryResult) {
        self.put(Entry::Delivery(result)).await;
    }

    /// Waits until every outcome given before is written.
    pub(super) async fn flush(&self) {
        let (done, written) = oneshot::channel();
        self.put(Entry::Flush(done)).await;
        let _ = written.await;
    }

    async fn put(&self, entry: Entry) {
        if self.entries.send(entry).await.is_err() {
            tracing::error!("The outcome writer has stopped: an outcome was not written");
        }
    }
}

async fn write_all(store: Arc<dyn Store>, mut taken: mpsc::Receiver<Entry>) {
    let mut last_finish = Instant::now();
    let mut buffer = Vec::with_capacity(MOST_AT_ONCE);
    while taken.recv_many(&mut buffer, MOST_AT_ONCE).await > 0 {
        // Linger a moment for more, so a busy worker's outcomes go in tens, not ones.
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while buffer.len() < MOST_AT_ONCE && !buffer.iter().any(|e| matches!(e, Entry::Flush(_))) {
            let room = MOST_AT_ONCE - buffer.len();
            tokio::select! {
                () = &mut linger => break,
                more = taken.recv_many(&mut buffer, room) => if more == 0 { break },
            }
        }
        let (mut outbox, mut deliveries, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for entry in buffer.drain(..) {
            match entry {
                Entry::Outbox(result) => outbox.push(result),
                Entry::Delivery(result) => deliveries.push(result),
                Entry::Flush(done) => waiting.push(done),
            }
        }
        let finish = !waiting.is_empty()
            || (!deliveries.is_empty() && last_finish.elapsed() >= FINISH_EVERY);
        let mut pause = Duration::from_millis(100);
        loop {
            match write(&*store, &outbox, &deliveries, finish).await {
                Ok(()) => break,
                Err(err) => {
                    tracing::error!(
                        error = format!("{err:#}"),
                        outcomes = outbox.len() + deliveries.len(),
                        "Failed to write outcomes; trying again"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        if finish {
            last_finish = Instant::now();
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

async fn write(
    store: &dyn Store,
    outbox: &[OutboxResult],
    deliveries: &[DeliveryResult],
    finish: bool,
) -> anyhow::Result<()> {
    store.record_outbox_results(outbox).await?;
    store.record_delivery_results(deliveries).await?;
    if finish {
        store.finish_sent_issues(chrono::Utc::now()).await?;
    }
    Ok(())
}
