//! The sends in flight, from both queues: at most `MAIL_CONCURRENCY` at once, in the
//! order they were handed out, with up to a batch more waiting for a slot. A batch
//! hands its copies out here, and after a whole batch the worker goes on to claim the
//! next while they wait and go, so the relay's connections wait neither for a claim (a
//! database round trip and a commit) nor for a batch's slowest copy.

use std::{future::Future, sync::Arc};

use tokio::{sync::Semaphore, task::JoinSet};

pub(super) struct InFlight {
    /// One for each send going.
    slots: Arc<Semaphore>,
    /// One for each send waiting for a slot.
    waiting_room: Arc<Semaphore>,
    sends: JoinSet<()>,
}

impl InFlight {
    /// `concurrency` sends at once, with up to `ahead` more waiting for a slot.
    pub(super) fn new(concurrency: usize, ahead: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting_room: Arc::new(Semaphore::new(ahead.max(1))),
            sends: JoinSet::new(),
        }
    }

    /// Hands `send` out, once there is room for it to wait for a slot; it goes when
    /// the sends handed out before it have slots. An error says a send handed out
    /// earlier panicked (its copy goes again when its lease runs out); this one is
    /// handed out all the same.
    pub(super) async fn start(
        &mut self,
        send: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let never_closed = "the semaphores are never closed";
        let waiting = self
            .waiting_room
            .clone()
            .acquire_owned()
            .await
            .expect(never_closed);
        let slots = self.slots.clone();
        self.sends.spawn(async move {
            // Tokio's semaphore is fair: slots are given in the order they were asked for.
            let slot = slots.acquire_owned().await.expect(never_closed);
            drop(waiting);
            send.await;
            drop(slot);
        });
        let mut panicked = None;
        while let Some(done) = self.sends.try_join_next() {
            panicked = done.err().or(panicked);
        }
        panicked.map_or(Ok(()), |err| Err(panic_error(err)))
    }

    /// Hands out every one of `sends`, in order, past a panic reported on the way.
    pub(super) async fn start_all<F>(
        &mut self,
        sends: impl IntoIterator<Item = F>,
    ) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut panicked = Ok(());
        for send in sends {
            panicked = panicked.and(self.start(send).await);
        }
        panicked
    }

    pub(super) fn len(&self) -> usize {
        self.sends.len()
    }

    /// Waits for every send in flight, even past one that panicked, so none is cut off.
    pub(super) async fn finish(&mut self) -> anyhow::Result<()> {
        let mut panicked = None;
        while let Some(done) = self.sends.join_next().await {
            panicked = done.err().or(panicked);
        }
        panicked.map_or(Ok(()), |err| Err(panic_error(err)))
    }
}

fn panic_error(err: tokio::task::JoinError) -> anyhow::Error {
    anyhow::Error::new(err).context("A send panicked")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn no_more_than_the_slots_run_at_once_and_finish_waits_for_all() {
        let mut in_flight = InFlight::new(3, 4);
        let (running, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        for _ in 0..20 {
            let (running, most, done) = (running.clone(), most.clone(), done.clone());
            in_flight
                .start(async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
        }
        in_flight.finish().await.unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 20);
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(in_flight.len(), 0);
    }

    #[tokio::test]
    async fn a_panicked_send_is_reported_and_the_others_still_finish() {
        let mut in_flight = InFlight::new(2, 2);
        let done = Arc::new(AtomicUsize::new(0));
        in_flight.start(async { panic!("a bug") }).await.unwrap();
        let counter = done.clone();
        // The panic is seen by the next start or by finish, whichever comes after it.
        let started = in_flight
            .start(async move {
                tokio::task::yield_now().await;
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .await;
        let finished = in_flight.finish().await;
        assert_eq!(started.is_err() as u8 + finished.is_err() as u8, 1);
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
