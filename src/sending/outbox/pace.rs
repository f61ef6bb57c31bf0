//! Spacing issue mail out within a second, so that the relay sees a steady stream at
//! `MAIL_RATE_PER_SECOND` rather than bursts. How many copies a second and an hour may
//! go out at all, for every instance together, is the shared budget (`sending::rate`).

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

/// Each send takes the next free slot, `1 / per_second` after the last (0: no spacing).
pub(super) struct Pace {
    per_second: u32,
    next: Mutex<Instant>,
}

impl Pace {
    pub(super) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            next: Mutex::new(Instant::now()),
        }
    }

    pub(super) async fn wait(&self) {
        if self.per_second == 0 {
            return;
        }
        let slot = {
            let mut next = self.next.lock().unwrap();
            let slot = (*next).max(Instant::now());
            *next = slot + Duration::from_secs(1) / self.per_second;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sends_are_spaced_out_within_the_second() {
        let pace = Pace::new(4);
        let start = Instant::now();
        for _ in 0..10 {
            pace.wait().await;
        }
        // Ten sends at four a second: the tenth goes at 9/4 s.
        assert_eq!(start.elapsed(), Duration::from_millis(2250));
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_means_no_waiting() {
        let pace = Pace::new(0);
        let start = Instant::now();
        for _ in 0..1000 {
            pace.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
