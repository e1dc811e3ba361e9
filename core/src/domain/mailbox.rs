//! Events raised into a live run, and the task-token waits that take them
//! (Durable's `raiseEvent` / `WaitForExternalEvent`, on Step Functions'
//! `.waitForTaskToken`).
//!
//! The record of a live run keeps two append-only lists: the events raised
//! and the waits registered. Each event, in the order they were recorded,
//! goes to the first wait of its name that no earlier event took and that it
//! may still reach before the wait's task times out (a wait whose message
//! gave its timeout: [`Wait::takes`]); without timeouts, the i-th event of a
//! name goes to the i-th wait of that name. Appending to either list, and
//! removing a formed pair or a wait no event took, never changes a pair
//! already formed, so the one write that completes a pair tells its writer
//! so (the record it returns), and that writer delivers it (SendTaskSuccess): a raise to a
//! waiting run is one write and one SendTaskSuccess, a raise to a run not
//! waiting yet one write, and no two writers ever deliver different events
//! to one wait or one event to two waits.
//!
//! Every raise and every wait carries an ID that its write refuses to add
//! twice (a raise's: its `Idempotency-Key`'s hash, or a fresh one per
//! request; a wait's: its task token's digest). An attempt whose answer was
//! lost, a client's retry with the key and a redelivered wait message so
//! find their own entry instead of adding a second one, and send its pair
//! again: the same event to the same token, which Step Functions takes once.
//!
//! Delivered pairs stay in the record until a sweep finds them older than
//! [`SWEEP_AFTER_MILLIS`], sends each again (a deliverer that died between its
//! write and its SendTaskSuccess left one undelivered) and removes them: a
//! later write's, or the scheduled sweep's, which finds the record by when it
//! is due ([`Mailbox::sweep_at`]). The run's end drops what is left.

use super::instance_id::hex;
use super::time::Millis;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;

/// Longest event name (characters).
pub const MAX_EVENT_NAME_CHARS: usize = 64;
/// Largest event body (JSON text): [`MAX_EVENTS`] of them, the waits' tokens,
/// the IDs and the record itself stay well inside DynamoDB's 400 KB item.
pub const MAX_EVENT_BODY_BYTES: usize = 16 * 1024;
/// Events a run's record holds at once: buffered ones, and delivered ones
/// not yet swept.
pub const MAX_EVENTS: usize = 16;
/// Waits a run's record holds at once.
pub const MAX_WAITS: usize = 16;
/// Step Functions' longest task token (SendTaskSuccess's `taskToken`).
pub const MAX_TASK_TOKEN_CHARS: usize = 2048;
/// Raises, and waits, one run takes in its life: their IDs are kept for the
/// whole run, so that a late retry is never taken for a new event.
pub const MAX_IDS_PER_RUN: usize = 256;
/// A pair older than this may have lost its deliverer: longer than any
/// function's timeout, so that its deliverer has finished or died.
pub const SWEEP_AFTER_MILLIS: Millis = 5 * 60 * 1000;
/// A wait takes no event whose pair would form less than this before the
/// wait's deadline: its deliverer sends it after the write that formed the
/// pair, within its function's life (`FunctionTimeoutSeconds`, at most 60 s),
/// and could otherwise find the task timed out. Step Functions answers a
/// timed-out task as it answers one that a replay of the same delivery
/// closed, so the event could be neither passed on nor known delivered. It
/// stays for the next wait of its name instead.
pub const DEADLINE_MARGIN_MILLIS: Millis = 60_000;
/// Step Functions' longest `TimeoutSeconds`.
pub const MAX_WAIT_TIMEOUT_SECONDS: u64 = 99_999_999;

/// An event name: 1–64 of `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventName(String);

/// Why an event name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event name {0:?} is not 1–{MAX_EVENT_NAME_CHARS} characters of letters, digits, '-', '_' and '.'")]
pub struct InvalidEventName(pub String);

impl EventName {
    /// Checks the rules above.
    pub fn parse(raw: &str) -> Result<Self, InvalidEventName> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_EVENT_NAME_CHARS
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid { Ok(Self(raw.to_owned())) } else { Err(InvalidEventName(raw.to_owned())) }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event raised into a run, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RaisedEvent {
    /// The raise's ID (see the module's doc).
    pub id: String,
    /// Its name: it goes to a wait of this name.
    pub name: EventName,
    /// Its body, JSON text: the wait's output.
    pub body: String,
    /// When it was recorded.
    pub at: Millis,
}

/// A wait for an event, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Wait {
    /// The digest of its token (see [`Wait::id_of`]).
    pub id: String,
    /// The event name it waits for.
    pub name: EventName,
    /// Step Functions' task token of the waiting task.
    pub token: String,
    /// When it was registered.
    pub at: Millis,
    /// When its task times out, if its message said (`timeoutSeconds` after
    /// the task sent it); `None`: not known, any event may go to it.
    pub deadline: Option<Millis>,
}

impl Wait {
    /// A wait's ID: SHA-256 of its token, so that a redelivered registration is known.
    pub fn id_of(token: &str) -> String {
        hex(&Sha256::digest(token.as_bytes()))
    }

    /// Whether `event` may go to this wait: its name, and the pair forms (the
    /// later of the two is written) at least [`DEADLINE_MARGIN_MILLIS`] before
    /// the wait's deadline. A function of the two entries alone, so that every
    /// writer computes the same pairs.
    pub fn takes(&self, event: &RaisedEvent) -> bool {
        self.name == event.name
            && self
                .deadline
                .is_none_or(|deadline| event.at.max(self.at).saturating_add(DEADLINE_MARGIN_MILLIS) <= deadline)
    }

    /// Whether its deadline has passed at `now`: its task has timed out. (A
    /// wait no event took can be removed whenever: no pair changes.)
    pub fn expired(&self, now: Millis) -> bool {
        self.deadline.is_some_and(|deadline| now >= deadline)
    }
}

/// An event and the wait it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The event (its index in [`Mailbox::events`]).
    pub event: (usize, &'a RaisedEvent),
    /// The wait (its index in [`Mailbox::waits`]).
    pub wait: (usize, &'a Wait),
}

impl Pair<'_> {
    /// When the pair formed: when its later half was written.
    pub fn formed_at(&self) -> Millis {
        self.event.1.at.max(self.wait.1.at)
    }
}

/// What a live run's record holds of events and waits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// Events in the order they were recorded.
    pub events: Vec<RaisedEvent>,
    /// Waits in the order they were registered.
    pub waits: Vec<Wait>,
    /// Every raise ID the run took (kept when its event is swept).
    pub raise_ids: BTreeSet<String>,
    /// Every wait ID the run took (kept when its wait is swept).
    pub wait_ids: BTreeSet<String>,
    /// How often a sweep removed entries: a sweep applies only to the lists it read.
    pub sweeps: u32,
    /// When the scheduled sweep looks at the record next: set by a write that
    /// adds to the mailbox when not set ([`SWEEP_AFTER_MILLIS`] after it, when
    /// a pair it formed is sweepable), and by each sweep to what is left's
    /// [`Mailbox::sweep_due`]. The store lists records by it.
    pub sweep_at: Option<Millis>,
}

impl Mailbox {
    /// Every pair, in the events' order: each event with the first wait that
    /// [takes](Wait::takes) it and that no earlier event took.
    pub fn pairs(&self) -> Vec<Pair<'_>> {
        let mut taken = vec![false; self.waits.len()];
        let mut pairs = Vec::new();
        for event in self.events.iter().enumerate() {
            let wait = self.waits.iter().enumerate().find(|(i, wait)| !taken[*i] && wait.takes(event.1));
            if let Some(wait) = wait {
                taken[wait.0] = true;
                pairs.push(Pair { event, wait });
            }
        }
        pairs
    }

    /// The waits no event took whose task has timed out ([`Wait::expired`]):
    /// a sweep removes them, so that a run whose waits time out again and
    /// again does not fill its record. Their indices.
    pub fn expired_waits(&self, now: Millis) -> Vec<usize> {
        let paired: BTreeSet<usize> = self.pairs().iter().map(|pair| pair.wait.0).collect();
        (0..self.waits.len()).filter(|i| !paired.contains(i) && self.waits[*i].expired(now)).collect()
    }

    /// The pair of the event with this raise ID, if it has one.
    pub fn pair_of_event(&self, id: &str) -> Option<Pair<'_>> {
        self.pairs().into_iter().find(|pair| pair.event.1.id == id)
    }

    /// The pair of the wait with this ID, if it has one.
    pub fn pair_of_wait(&self, id: &str) -> Option<Pair<'_>> {
        self.pairs().into_iter().find(|pair| pair.wait.1.id == id)
    }

    /// When a sweep has work here: when its oldest pair becomes sweepable; `None` without pairs.
    pub fn sweep_due(&self) -> Option<Millis> {
        self.pairs().iter().map(|pair| pair.formed_at() + SWEEP_AFTER_MILLIS).min()
    }

    /// Events without a wait yet.
    pub fn buffered(&self) -> usize {
        self.events.len() - self.pairs().len()
    }

    /// What a run's end leaves: no events, no waits; the IDs and the sweep
    /// count stay, since a redrive brings the same run back (a retry, a
    /// redelivered wait message or a stale sweep must still find them).
    pub fn ended(&self) -> Self {
        Mailbox { events: Vec::new(), waits: Vec::new(), sweep_at: None, ..self.clone() }
    }

    /// Whether the record holds nothing of events or waits (IDs aside).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.waits.is_empty()
    }

    /// The pairs a sweep sends again and removes at `now`: those that formed
    /// at least [`SWEEP_AFTER_MILLIS`] ago (removing a pair changes no other).
    pub fn sweepable(&self, now: Millis) -> Vec<Pair<'_>> {
        self.pairs().into_iter().filter(|pair| now - pair.formed_at() >= SWEEP_AFTER_MILLIS).collect()
    }

    /// Without the events and waits at these indices: swept once more, and due
    /// for the next sweep when what is left is.
    pub fn without(&self, events: &[usize], waits: &[usize]) -> Self {
        let keep = |skip: &[usize], i: usize| !skip.contains(&i);
        let mut left = Mailbox {
            events: self.events.iter().enumerate().filter(|(i, _)| keep(events, *i)).map(|(_, e)| e.clone()).collect(),
            waits: self.waits.iter().enumerate().filter(|(i, _)| keep(waits, *i)).map(|(_, w)| w.clone()).collect(),
            sweeps: self.sweeps + 1,
            ..self.clone()
        };
        left.sweep_at = left.sweep_due();
        left
    }

    /// Whether the store may add `event` (besides the record being live):
    /// its ID is new, and there is room for it.
    pub fn takes_event(&self, event: &RaisedEvent) -> bool {
        !self.raise_ids.contains(&event.id) && self.events.len() < MAX_EVENTS && self.raise_ids.len() < MAX_IDS_PER_RUN
    }

    /// Whether the store may add `wait` (besides the record naming its run, live).
    pub fn takes_wait(&self, wait: &Wait) -> bool {
        !self.wait_ids.contains(&wait.id) && self.waits.len() < MAX_WAITS && self.wait_ids.len() < MAX_IDS_PER_RUN
    }

    /// With `event` added (and due for a sweep, if it was not).
    pub fn with_event(&self, event: &RaisedEvent) -> Self {
        let mut next = self.clone();
        next.raise_ids.insert(event.id.clone());
        next.events.push(event.clone());
        next.sweep_at.get_or_insert(event.at + SWEEP_AFTER_MILLIS);
        next
    }

    /// With `wait` added (and due for a sweep, if it was not).
    pub fn with_wait(&self, wait: &Wait) -> Self {
        let mut next = self.clone();
        next.wait_ids.insert(wait.id.clone());
        next.waits.push(wait.clone());
        next.sweep_at.get_or_insert(wait.at + SWEEP_AFTER_MILLIS);
        next
    }
}

/// An event body's problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEventBody {
    /// Not JSON.
    #[error("the event body is not JSON: {0}")]
    NotJson(String),
    /// Over [`MAX_EVENT_BODY_BYTES`].
    #[error("the event body is {0} bytes; at most {MAX_EVENT_BODY_BYTES} are taken (pass a reference to larger data)")]
    TooLarge(usize),
}

/// The size check of an event body (its JSON syntax is the entry point's to check).
pub fn check_body_size(body: &str) -> Result<(), InvalidEventBody> {
    if body.len() > MAX_EVENT_BODY_BYTES { Err(InvalidEventBody::TooLarge(body.len())) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> EventName {
        EventName::parse(n).unwrap()
    }
    fn event(id: &str, n: &str, at: Millis) -> RaisedEvent {
        RaisedEvent { id: id.into(), name: name(n), body: format!("{{\"id\":\"{id}\"}}"), at }
    }
    fn wait(token: &str, n: &str, at: Millis) -> Wait {
        Wait { id: Wait::id_of(token), name: name(n), token: token.into(), at, deadline: None }
    }
    fn wait_until(token: &str, at: Millis, deadline: Millis) -> Wait {
        Wait { deadline: Some(deadline), ..wait(token, "a", at) }
    }
    fn paired(mailbox: &Mailbox) -> Vec<(String, String)> {
        mailbox.pairs().iter().map(|p| (p.event.1.id.clone(), p.wait.1.token.clone())).collect()
    }

    #[test]
    fn names_follow_the_rules() {
        for good in ["approval", "Approval.v2", "a-b_c", &"x".repeat(64)] {
            assert!(EventName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "with space", "a/b", "é", &"x".repeat(65), "a#b"] {
            assert_eq!(EventName::parse(bad), Err(InvalidEventName(bad.into())));
        }
    }

    #[test]
    fn the_ith_event_of_a_name_goes_to_the_ith_wait_of_that_name() {
        // Given events and waits of two names, interleaved
        let mailbox = Mailbox::default()
            .with_event(&event("e1", "a", 1))
            .with_wait(&wait("t1", "b", 2))
            .with_event(&event("e2", "b", 3))
            .with_event(&event("e3", "a", 4))
            .with_wait(&wait("t2", "a", 5));
        // Then a pairs with its first wait, b with its, and one a stays buffered
        let pairs: Vec<_> = mailbox.pairs().iter().map(|p| (p.event.1.id.clone(), p.wait.1.token.clone())).collect();
        assert_eq!(pairs, [("e1".to_string(), "t2".to_string()), ("e2".into(), "t1".into())]);
        assert_eq!(mailbox.buffered(), 1);
        assert_eq!(mailbox.pair_of_wait(&Wait::id_of("t2")).map(|p| p.event.1.id.clone()), Some("e1".into()));
        assert!(mailbox.pair_of_event("e3").is_none());
    }

    #[test]
    fn adding_never_changes_a_pair_already_formed() {
        let base = Mailbox::default().with_event(&event("e1", "a", 1)).with_wait(&wait("t1", "a", 2));
        let grown = base.with_wait(&wait("t2", "a", 3)).with_event(&event("e2", "a", 4));
        assert_eq!(grown.pair_of_event("e1").map(|p| p.wait.1.token.clone()), Some("t1".into()));
        assert_eq!(grown.pair_of_event("e2").map(|p| p.wait.1.token.clone()), Some("t2".into()));
    }

    #[test]
    fn an_event_goes_past_a_wait_it_would_reach_too_close_to_its_deadline() {
        // Given a wait that timed out at 1000, and one that waits long
        let waits =
            Mailbox::default().with_wait(&wait_until("t1", 0, 1_000)).with_wait(&wait_until("t2", 500, 600_000));
        // When an event comes after the first's deadline, it goes to the second
        let late = waits.with_event(&event("e1", "a", 2_000));
        assert_eq!(paired(&late), [("e1".to_string(), "t2".to_string())]);
        // and one that comes within the margin of a deadline skips that wait too
        let deadline = 5_000 + DEADLINE_MARGIN_MILLIS;
        let close = Mailbox::default().with_wait(&wait_until("t1", 0, deadline)).with_event(&event("e1", "a", 5_001));
        assert_eq!((paired(&close), close.buffered()), (vec![], 1), "buffered for the next wait");
        let in_time = Mailbox::default().with_wait(&wait_until("t1", 0, deadline)).with_event(&event("e1", "a", 5_000));
        assert_eq!(paired(&in_time), [("e1".to_string(), "t1".to_string())]);
        // A wait registered after its deadline takes nothing, even an event buffered before it
        let buffered = Mailbox::default().with_event(&event("e1", "a", 0)).with_wait(&wait_until("t1", 5_000, 1_000));
        assert_eq!(buffered.buffered(), 1);
        // and a sweep removes a wait no event took once its deadline has passed
        assert_eq!(buffered.expired_waits(999), Vec::<usize>::new());
        assert_eq!(buffered.expired_waits(1_000), [0]);
        assert_eq!(late.expired_waits(Millis::MAX / 2), [0], "not the wait an event took");
    }

    #[test]
    fn a_sweep_takes_the_old_pairs_and_leaves_the_rest_paired_as_before_and_due_when_they_are() {
        let old = 0;
        let now = SWEEP_AFTER_MILLIS + 10;
        let mailbox = Mailbox::default()
            .with_event(&event("e1", "a", old))
            .with_wait(&wait("t1", "a", old))
            .with_event(&event("e2", "a", now))
            .with_wait(&wait("t2", "a", old))
            .with_event(&event("e3", "a", old))
            .with_wait(&wait("t3", "a", old))
            .with_event(&event("f1", "b", old))
            .with_wait(&wait("u1", "b", old));
        // Due since the first write; e2's pair is young, the others are swept
        assert_eq!((mailbox.sweep_at, mailbox.sweep_due()), (Some(SWEEP_AFTER_MILLIS), Some(SWEEP_AFTER_MILLIS)));
        let swept: Vec<_> = mailbox.sweepable(now).iter().map(|p| p.event.1.id.clone()).collect();
        assert_eq!(swept, ["e1", "e3", "f1"]);
        // and what is left pairs as before, due when e2's pair is old enough
        let left = mailbox.without(&[0, 2, 3], &[0, 2, 3]);
        assert_eq!(left.pair_of_event("e2").map(|p| p.wait.1.token.clone()), Some("t2".into()));
        assert_eq!(left.sweep_at, Some(now + SWEEP_AFTER_MILLIS));
        assert_eq!(left.raise_ids.len(), 4, "IDs outlive their entries");
        // Once nothing is paired, nothing is due
        let last = left.without(&[0], &[0]);
        assert_eq!((last.sweep_at, last.sweeps), (None, 2));
        assert_eq!(Mailbox::default().with_event(&event("e9", "a", 5)).ended().sweep_at, None);
    }

    #[test]
    fn ids_are_taken_once_and_room_is_bounded() {
        let mut mailbox = Mailbox::default().with_event(&event("e1", "a", 1));
        assert!(!mailbox.takes_event(&event("e1", "a", 2)), "the same raise again");
        for i in 2..=MAX_EVENTS {
            mailbox = mailbox.with_event(&event(&format!("e{i}"), "a", 1));
        }
        assert!(!mailbox.takes_event(&event("new", "a", 2)), "full");
        let w = wait("t1", "a", 1);
        assert!(mailbox.takes_wait(&w) && !mailbox.with_wait(&w).takes_wait(&w));
    }

    /// What can happen to a mailbox: an event or a wait appended (name, time, the
    /// wait's deadline if any), a formed pair swept, the expired waits swept.
    #[derive(Debug, Clone)]
    enum Step {
        Event(bool, Millis),
        Wait(bool, Millis, Option<Millis>),
        SweepPair(usize),
        SweepExpired(Millis),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        let at = 0..40_000i64;
        prop_oneof![
            (any::<bool>(), at.clone()).prop_map(|(a, at)| Step::Event(a, at)),
            (any::<bool>(), at.clone(), proptest::option::of(0..60_000i64)).prop_map(|(a, at, d)| Step::Wait(a, at, d)),
            (0..4usize).prop_map(Step::SweepPair),
            (0..400_000i64).prop_map(Step::SweepExpired),
        ]
    }

    proptest::proptest! {
        /// The rule every writer relies on: once an event and a wait are a pair, no append
        /// and no sweep makes either of them part of another pair (whatever the times and
        /// the deadlines, and writers' clocks need not agree).
        #[test]
        fn a_pair_once_formed_stays_as_long_as_both_are_held(steps in proptest::collection::vec(step(), 1..24)) {
            let mut mailbox = Mailbox::default();
            let mut formed: std::collections::BTreeMap<String, String> = Default::default();
            for (i, step) in steps.into_iter().enumerate() {
                let n = |a: bool| if a { "a" } else { "b" };
                mailbox = match step {
                    Step::Event(a, at) => mailbox.with_event(&event(&format!("e{i}"), n(a), at)),
                    Step::Wait(a, at, deadline) => mailbox.with_wait(&Wait { deadline, ..wait(&format!("t{i}"), n(a), at) }),
                    Step::SweepPair(k) => match mailbox.pairs().get(k) {
                        Some(pair) => mailbox.without(&[pair.event.0], &[pair.wait.0]),
                        None => mailbox,
                    },
                    // (even when a later event's writer's clock is behind `now`)
                    Step::SweepExpired(now) => mailbox.without(&[], &mailbox.expired_waits(now)),
                };
                let held_events: BTreeSet<&str> = mailbox.events.iter().map(|e| e.id.as_str()).collect();
                let held_waits: BTreeSet<&str> = mailbox.waits.iter().map(|w| w.token.as_str()).collect();
                formed.retain(|e, w| held_events.contains(e.as_str()) && held_waits.contains(w.as_str()));
                for (e, w) in paired(&mailbox) {
                    if let Some(before) = formed.insert(e.clone(), w.clone()) {
                        proptest::prop_assert_eq!(&before, &w, "event {} moved", e);
                    }
                }
                let waits: Vec<&String> = formed.values().collect();
                proptest::prop_assert!(waits.len() == waits.iter().collect::<BTreeSet<_>>().len(), "a wait took two events: {:?}", formed);
            }
        }
    }

    #[test]
    fn bodies_over_the_bound_are_refused() {
        assert!(check_body_size(&"x".repeat(MAX_EVENT_BODY_BYTES)).is_ok());
        assert_eq!(
            check_body_size(&"x".repeat(MAX_EVENT_BODY_BYTES + 1)),
            Err(InvalidEventBody::TooLarge(MAX_EVENT_BODY_BYTES + 1))
        );
    }
}
