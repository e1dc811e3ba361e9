//! A clock the test moves forward instead of sleeping.

use sfn_singleton::domain::Millis;
use sfn_singleton::service::Clock;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A clock the test moves forward instead of sleeping.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn advance(&self, millis: Millis) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    pub fn clock(&self) -> Clock {
        let offset = self.0.clone();
        let system = sfn_singleton::service::system_clock();
        Arc::new(move || system() + offset.load(Ordering::SeqCst))
    }
}
