//! The hashing queue: at most `concurrency` slots of argon2 work at once, and two bounded
//! lanes of checks waiting for a slot. A freed slot goes to the [`Lane::Priority`] check
//! that waited longest, and only when none waits to the oldest [`Lane::Ordinary`] one —
//! except that after [`PRIORITY_RUN`] priority grants in a row while ordinary checks
//! waited, the next slot goes to the oldest ordinary check: priority is not absolute, so a
//! flood of priority checks (correct sign-ins from many known pairs) slows the ordinary
//! lane to one grant in `PRIORITY_RUN + 1` but never starves it. Each lane refuses a
//! newcomer at once ([`PasswordError::Busy`]) only when that lane itself is full, so a
//! flood of ordinary checks never refuses a priority one.
//!
//! ```text
//!  slot(lane, weight) ──▶ free slots and nobody of a lane it yields to waiting?
//!        │ no                          │ yes
//!        ▼                             ▼
//!  its lane full? ── yes ──▶ Busy     Slot (held until the work ends)
//!        │ no                          │ dropped
//!        ▼                             ▼
//!  waits in its lane ◀── granted ── release: priority lane first, then ordinary;
//!                                   ordinary's turn after PRIORITY_RUN priority grants
//!                                   in a row while it waited
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::{Lane, PasswordError};

/// How many priority checks in a row may be granted while ordinary checks wait; the next
/// grant then goes to the ordinary lane.
pub(super) const PRIORITY_RUN: u32 = 4;

/// The slots and the two lanes of waiting checks. Shared by every clone of the hasher.
pub(super) struct Queue {
    state: Mutex<State>,
    /// At most this many may wait in each lane.
    max_waiting: usize,
}

struct State {
    /// Slots free now.
    free: u32,
    /// Checks waiting in the priority lane, oldest first.
    priority: VecDeque<Waiter>,
    /// Checks waiting in the ordinary lane, oldest first.
    ordinary: VecDeque<Waiter>,
    /// The id the next waiter gets.
    next_id: u64,
    /// Priority grants in a row while ordinary checks waited (reset by an ordinary grant,
    /// or a priority grant with no ordinary check waiting).
    priority_run: u32,
}

/// A check waiting for `weight` slots; `wake` hands them over.
struct Waiter {
    id: u64,
    weight: u32,
    wake: oneshot::Sender<()>,
}

impl State {
    fn lane(&mut self, lane: Lane) -> &mut VecDeque<Waiter> {
        match lane {
            Lane::Priority => &mut self.priority,
            Lane::Ordinary => &mut self.ordinary,
        }
    }

    /// Whether a check of `lane` may start at once: slots are free and nobody it must
    /// let go first is waiting (a priority check lets older priority checks go first, and
    /// waiting ordinary ones when it is their turn; an ordinary one lets every waiting
    /// check go first).
    fn may_start(&self, lane: Lane, weight: u32) -> bool {
        let nobody_ahead = match lane {
            Lane::Priority => self.priority.is_empty() && !self.ordinary_turn(),
            Lane::Ordinary => self.priority.is_empty() && self.ordinary.is_empty(),
        };
        nobody_ahead && self.free >= weight
    }

    /// Whether the next grant is the ordinary lane's although priority checks want it:
    /// ordinary checks wait and [`PRIORITY_RUN`] priority grants went in a row.
    fn ordinary_turn(&self) -> bool {
        !self.ordinary.is_empty() && self.priority_run >= PRIORITY_RUN
    }

    /// The lane the next free slots go to: priority's unless it is empty or it is the
    /// ordinary lane's turn; `None` when nobody waits.
    fn next_lane(&self) -> Option<Lane> {
        if self.priority.is_empty() || self.ordinary_turn() {
            (!self.ordinary.is_empty()).then_some(Lane::Ordinary)
        } else {
            Some(Lane::Priority)
        }
    }

    /// Takes `weight` slots for a check of `lane` and counts the grant towards the
    /// ordinary lane's turn.
    fn take(&mut self, lane: Lane, weight: u32) {
        self.free -= weight;
        self.priority_run = match lane {
            Lane::Priority if !self.ordinary.is_empty() => self.priority_run.saturating_add(1),
            Lane::Priority | Lane::Ordinary => 0,
        };
    }

    /// Hands free slots to waiting checks: the priority lane's oldest first, the ordinary
    /// lane's oldest when it is its turn.
    fn dispatch(&mut self) {
        loop {
            let free = self.free;
            let Some(lane) = self.next_lane() else { return };
            let fits = self.lane(lane).front().is_some_and(|w| w.weight <= free);
            if !fits {
                // The oldest waits for more slots; nobody overtakes it in its lane, and
                // the other lane does not overtake it when it is its lane's turn.
                return;
            }
            let Some(waiter) = self.lane(lane).pop_front() else {
                return;
            };
            let run = self.priority_run;
            self.take(lane, waiter.weight);
            if waiter.wake.send(()).is_err() {
                // Its caller left before it was granted: the slots stay free, and the
                // grant that did not happen does not count.
                self.free += waiter.weight;
                self.priority_run = run;
            }
        }
    }
}

impl Queue {
    /// A queue of `concurrency` slots (at least one) and up to `max_waiting` waiting
    /// checks per lane.
    pub(super) fn new(concurrency: usize, max_waiting: usize) -> Self {
        Self {
            state: Mutex::new(State {
                free: u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX),
                priority: VecDeque::new(),
                ordinary: VecDeque::new(),
                next_id: 0,
                priority_run: 0,
            }),
            max_waiting,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is counts and queues changed under the lock in whole steps: a panic
        // elsewhere cannot leave it half-changed.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `weight` slots for a check of `lane`, at once if they are free and nobody goes
    /// first, else after waiting in the lane; [`PasswordError::Busy`] at once when the
    /// lane is full. A caller that stops waiting leaves the lane (or, if it was granted
    /// meanwhile, gives the slots back).
    pub(super) async fn slot(
        self: &Arc<Self>,
        lane: Lane,
        weight: u32,
    ) -> Result<Slot, PasswordError> {
        let (id, granted) = {
            let mut state = self.lock();
            if state.may_start(lane, weight) {
                state.take(lane, weight);
                return Ok(self.granted(weight));
            }
            if state.lane(lane).len() >= self.max_waiting {
                return Err(PasswordError::Busy);
            }
            let id = state.next_id;
            state.next_id = state.next_id.wrapping_add(1);
            let (wake, granted) = oneshot::channel();
            state.lane(lane).push_back(Waiter { id, weight, wake });
            (id, granted)
        };
        let mut place = Place {
            queue: self,
            lane,
            id,
            weight,
            waiting: true,
        };
        match granted.await {
            Ok(()) => {
                place.waiting = false;
                Ok(self.granted(weight))
            }
            // The sender is only dropped unsent when the queue itself goes.
            Err(_) => Err(PasswordError::WorkerGone),
        }
    }

    fn granted(self: &Arc<Self>, weight: u32) -> Slot {
        Slot {
            queue: Arc::clone(self),
            weight,
        }
    }

    fn release(&self, weight: u32) {
        let mut state = self.lock();
        state.free += weight;
        state.dispatch();
    }

    /// Slots free now.
    #[cfg(test)]
    pub(super) fn free(&self) -> u32 {
        self.lock().free
    }

    /// How many checks wait in `lane` now.
    #[cfg(test)]
    pub(super) fn waiting(&self, lane: Lane) -> usize {
        self.lock().lane(lane).len()
    }
}

/// Slots held for one check's work; given back (to the next waiting check) when dropped.
pub(super) struct Slot {
    queue: Arc<Queue>,
    weight: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.queue.release(self.weight);
    }
}

/// A place in a lane, while its caller waits: leaving it (the caller's future dropped)
/// takes the waiter out of the lane, or gives back the slots granted meanwhile.
struct Place<'a> {
    queue: &'a Arc<Queue>,
    lane: Lane,
    id: u64,
    weight: u32,
    waiting: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if !self.waiting {
            return;
        }
        let mut state = self.queue.lock();
        let queued = state.lane(self.lane).iter().position(|w| w.id == self.id);
        match queued {
            Some(at) => {
                state.lane(self.lane).remove(at);
                // Others behind it may fit now.
                state.dispatch();
            }
            None => {
                // Granted while leaving: the slots go to the next one.
                state.free += self.weight;
                state.dispatch();
            }
        }
    }
}
