//! Pacing issue mail to the relay's limits, a second and an hour.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

/// Spaces sends out to at most `per_second` a second and `per_hour` an hour (0: no
/// limit). Each send takes the next free slot; a full hour waits for the next.
pub(super) struct Pace {
    per_second: u32,
    per_hour: u32,
    slots: Mutex<PaceState>,
}

struct PaceState {
    next: Instant,
    hour_start: Instant,
    sent_this_hour: u32,
}

impl Pace {
    pub(super) fn new(per_second: u32, per_hour: u32) -> Self {
        let now = Instant::now();
        Self {
            per_second,
            per_hour,
            slots: Mutex::new(PaceState {
                next: now,
                hour_start: now,
                sent_this_hour: 0,
            }),
        }
    }

    /// How many copies may be claimed now: about a second's worth at most, and no
    /// more than the hour has left, so that no claimed copy waits long (its lease must
    /// outlast the wait). `Err` says when the hour's allowance comes back.
    pub(super) fn allowance(&self, wanted: u32) -> Result<u32, Instant> {
        let mut allowed = wanted;
        if self.per_second > 0 {
            allowed = allowed.min(self.per_second);
        }
        if self.per_hour > 0 {
            let state = self.slots.lock().unwrap();
            let hour_ends = state.hour_start + Duration::from_secs(3600);
            let left = if state.next.max(Instant::now()) >= hour_ends {
                self.per_hour // wait() starts a new hour
            } else {
                self.per_hour.saturating_sub(state.sent_this_hour)
            };
            if left == 0 {
                return Err(hour_ends);
            }
            allowed = allowed.min(left);
        }
        Ok(allowed)
    }

    pub(super) async fn wait(&self) {
        if self.per_second == 0 && self.per_hour == 0 {
            return;
        }
        let slot = {
            let mut state = self.slots.lock().unwrap();
            let hour = Duration::from_secs(3600);
            let mut slot = state.next.max(Instant::now());
            if self.per_hour > 0 {
                if slot >= state.hour_start + hour {
                    state.hour_start = slot;
                    state.sent_this_hour = 0;
                }
                if state.sent_this_hour >= self.per_hour {
                    slot = state.hour_start + hour;
                    state.hour_start = slot;
                    state.sent_this_hour = 0;
                }
                state.sent_this_hour += 1;
            }
            if self.per_second > 0 {
                state.next = slot + Duration::from_secs(1) / self.per_second;
            }
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pace_spaces_sends_per_second_and_per_hour() {
        let pace = Pace::new(4, 10);
        let start = Instant::now();
        for _ in 0..10 {
            pace.wait().await;
        }
        // Ten sends at four a second: the tenth goes at 9/4 s.
        assert_eq!(start.elapsed(), Duration::from_millis(2250));
        pace.wait().await;
        // The eleventh waits for the next hour.
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn allowance_is_a_second_at_most_and_what_the_hour_has_left() {
        let pace = Pace::new(4, 10);
        assert_eq!(pace.allowance(128), Ok(4));
        for _ in 0..8 {
            pace.wait().await;
        }
        assert_eq!(pace.allowance(128), Ok(2));
        pace.wait().await;
        pace.wait().await;
        let hour_ends = pace.allowance(128).unwrap_err();
        tokio::time::sleep_until(hour_ends).await;
        assert_eq!(pace.allowance(128), Ok(4));
        assert_eq!(Pace::new(0, 0).allowance(128), Ok(128));
        assert_eq!(Pace::new(0, 50).allowance(128), Ok(50));
    }

    #[tokio::test(start_paused = true)]
    async fn no_limits_means_no_waiting() {
        let pace = Pace::new(0, 0);
        let start = Instant::now();
        for _ in 0..1000 {
            pace.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
