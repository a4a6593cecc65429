//! Per-id state: the event counter and the rate control check, behind one short mutex.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct IdState {
    counter: u64,
    last_published: Instant,
}

/// Counts events per id and enforces the minimum interval between two events of one id.
#[derive(Debug)]
pub(super) struct Gate {
    ids: Mutex<HashMap<String, IdState>>,
    max_ids: usize,
}

impl Gate {
    pub(super) fn new(max_ids: usize) -> Self {
        Gate {
            ids: Mutex::new(HashMap::new()),
            max_ids: max_ids.max(1),
        }
    }

    /// Admits an event of `id` at `now` if its previous admitted event is at least `min_interval` old;
    /// returns the event's per-id counter (1 for the first), or `None` when it must be dropped.
    pub(super) fn admit(
        &self,
        id: &str,
        now: Instant,
        min_interval: Option<Duration>,
    ) -> Option<u64> {
        // The map holds plain counters: a panic while it was locked cannot break an invariant.
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = ids.get_mut(id) {
            if let Some(min) = min_interval
                && now.saturating_duration_since(state.last_published) < min
            {
                return None;
            }
            state.counter += 1;
            state.last_published = now;
            return Some(state.counter);
        }
        if ids.len() >= self.max_ids {
            log::warn!(
                "metrics: more than {} distinct ids, per-id counters reset",
                self.max_ids
            );
            ids.clear();
        }
        ids.insert(
            id.to_owned(),
            IdState {
                counter: 1,
                last_published: now,
            },
        );
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_id_from_one() {
        let gate = Gate::new(100);
        let t = Instant::now();
        assert_eq!(gate.admit("a", t, None), Some(1));
        assert_eq!(gate.admit("a", t, None), Some(2));
        assert_eq!(gate.admit("b", t, None), Some(1));
        assert_eq!(gate.admit("a", t, None), Some(3));
    }

    #[test]
    fn rate_control_drops_events_too_close_together_without_counting_them() {
        let gate = Gate::new(100);
        let t = Instant::now();
        let every = Some(Duration::from_secs(2));
        assert_eq!(gate.admit("fps", t, every), Some(1));
        assert_eq!(
            gate.admit("fps", t + Duration::from_millis(1999), every),
            None
        );
        assert_eq!(
            gate.admit("fps", t + Duration::from_secs(2), every),
            Some(2)
        );
        assert_eq!(gate.admit("fps", t + Duration::from_secs(3), every), None);
        assert_eq!(
            gate.admit("fps", t + Duration::from_secs(4), every),
            Some(3)
        );
        // Other ids are not limited by it.
        assert_eq!(gate.admit("mem", t + Duration::from_secs(4), None), Some(1));
        assert_eq!(gate.admit("mem", t + Duration::from_secs(4), None), Some(2));
    }

    #[test]
    fn the_id_table_is_bounded() {
        let gate = Gate::new(3);
        let t = Instant::now();
        for id in ["a", "b", "c"] {
            gate.admit(id, t, None);
        }
        assert_eq!(gate.admit("a", t, None), Some(2));
        assert_eq!(gate.admit("d", t, None), Some(1)); // table was full: reset
        assert_eq!(gate.admit("a", t, None), Some(1));
        assert!(gate.ids.lock().unwrap().len() <= 3);
    }
}
