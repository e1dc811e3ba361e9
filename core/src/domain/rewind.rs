//! Which ended runs a rewind (Step Functions' RedriveExecution) may take up again.

use super::record::{Millis, Record, Status};

/// Step Functions redrives an execution up to 14 days after it stopped.
pub const REDRIVE_WINDOW_MILLIS: Millis = 14 * 24 * 60 * 60 * 1000;

/// Why the instance's run cannot be rewound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewindRefusal {
    /// It has not ended: something runs (409).
    #[error("its execution has not ended ({0}); only a run that ended FAILED, TIMED_OUT or ABORTED can be rewound")]
    NotEnded(Status),
    /// A `terminateExisting` start stopped it to start a new run (409).
    #[error("its execution was stopped by a start that replaces it")]
    BeingReplaced,
    /// It ended well: nothing to redrive (410).
    #[error("its execution succeeded; only a run that ended FAILED, TIMED_OUT or ABORTED can be rewound")]
    Succeeded,
    /// Step Functions never started it (410).
    #[error("its execution never started (START_FAILED); start the instance again instead")]
    NeverStarted,
    /// Past Step Functions' redrive window (410).
    #[error("its execution stopped more than 14 days ago, past Step Functions' redrive window")]
    PastWindow,
    /// Step Functions no longer has its execution (410).
    #[error("Step Functions no longer has its execution")]
    ExecutionGone,
}

impl RewindRefusal {
    /// Whether the refusal holds for good (410), not only while something runs (409).
    pub fn is_gone(&self) -> bool {
        !matches!(self, RewindRefusal::NotEnded(_) | RewindRefusal::BeingReplaced)
    }

    /// Whether a retry may soon be answered otherwise: a rewind or start still in flight.
    pub fn is_in_flight(&self) -> bool {
        matches!(self, RewindRefusal::NotEnded(Status::Starting | Status::Redriving))
    }
}

/// Whether `record`'s run may be rewound at `now`.
pub fn check_rewindable(record: &Record, now: Millis) -> Result<(), RewindRefusal> {
    match record.status {
        Status::Failed | Status::TimedOut | Status::Aborted => {}
        Status::Succeeded => return Err(RewindRefusal::Succeeded),
        Status::StartFailed => return Err(RewindRefusal::NeverStarted),
        status @ (Status::Starting | Status::Running | Status::Redriving) => {
            return Err(RewindRefusal::NotEnded(status));
        }
    }
    if record.stopped_to_be_replaced() {
        return Err(RewindRefusal::BeingReplaced);
    }
    // (A stop date of 0 is one an answer left out, as moto's StopExecution does.)
    let stopped_at = record.stop_date.filter(|date| *date > 0).unwrap_or(record.updated_at);
    if now - stopped_at >= REDRIVE_WINDOW_MILLIS {
        return Err(RewindRefusal::PastWindow);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::REPLACED_ERROR;
    use crate::domain::{ExecutionName, InstanceId, StartToken, StateMachineArn};

    fn ended(status: Status, stop_date: Millis) -> Record {
        let id = InstanceId::parse("a").unwrap_or_else(|e| panic!("{e}"));
        let sm = StateMachineArn::parse("arn:aws:states:us-east-1:1:stateMachine:s").unwrap_or_else(|e| panic!("{e}"));
        let name = ExecutionName::new(&id, StartToken::new(0, 0));
        Record { status, stop_date: Some(stop_date), ..Record::starting(&id, "f", &sm, &name, "null", 0, 1_000) }
    }

    #[test]
    fn only_runs_that_ended_badly_within_the_window_are_rewound() {
        for status in [Status::Failed, Status::TimedOut, Status::Aborted] {
            assert_eq!(check_rewindable(&ended(status, 10), 10 + REDRIVE_WINDOW_MILLIS - 1), Ok(()), "{status}");
            let late = check_rewindable(&ended(status, 10), 10 + REDRIVE_WINDOW_MILLIS);
            assert_eq!(late, Err(RewindRefusal::PastWindow), "{status}");
        }
        assert_eq!(check_rewindable(&ended(Status::Succeeded, 0), 1), Err(RewindRefusal::Succeeded));
        assert_eq!(check_rewindable(&ended(Status::StartFailed, 0), 1), Err(RewindRefusal::NeverStarted));
        for status in [Status::Starting, Status::Running, Status::Redriving] {
            let refusal = check_rewindable(&ended(status, 0), 1);
            assert!(refusal.as_ref().is_err_and(|r| !r.is_gone()), "{status}: {refusal:?}");
        }
        let unknown_stop = Record { updated_at: 10, ..ended(Status::Aborted, 0) };
        assert_eq!(check_rewindable(&unknown_stop, REDRIVE_WINDOW_MILLIS), Ok(()), "the last change stands in");
        let replaced = Record { error: Some(REPLACED_ERROR.into()), ..ended(Status::Aborted, 0) };
        assert_eq!(check_rewindable(&replaced, 1), Err(RewindRefusal::BeingReplaced));
    }
}
