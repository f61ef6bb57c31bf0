//! A value read from the database at most every few seconds per instance, for what
//! every public request needs and staff rarely change (the brand, the lists offered):
//! a change made on another instance shows within `FRESH_FOR`, one made here at once.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

/// How long a value read from the database is used before it is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

pub struct Recent<T> {
    slot: RwLock<Option<(Instant, Arc<T>)>>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self {
            slot: RwLock::new(None),
        }
    }
}

impl<T> Recent<T> {
    /// The value, if it was read less than `FRESH_FOR` ago.
    pub fn fresh(&self) -> Option<Arc<T>> {
        self.read()
            .filter(|(read_at, _)| read_at.elapsed() < FRESH_FOR)
            .map(|(_, value)| value)
    }

    /// The last value read, however long ago.
    pub fn last(&self) -> Option<Arc<T>> {
        self.read().map(|(_, value)| value)
    }

    fn read(&self) -> Option<(Instant, Arc<T>)> {
        self.slot.read().ok().and_then(|slot| slot.clone())
    }

    /// A value just read (or saved here): used from now on.
    pub fn saved(&self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some((Instant::now(), value.clone()));
        }
        value
    }

    /// Forgets the value (it changed here): the next use reads it again.
    pub fn forget(&self) {
        if let Ok(mut slot) = self.slot.write() {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_fresh_until_forgotten() {
        let recent = Recent::default();
        assert!(recent.fresh().is_none());
        recent.saved(7);
        assert_eq!(recent.fresh().as_deref(), Some(&7));
        recent.forget();
        assert!(recent.fresh().is_none() && recent.last().is_none());
    }
}
