//! What the StartExecution attempts of one start add up to. Pure, so that
//! the service and the model checker decide alike.
//!
//! The rule: once an attempt may have reached Step Functions, a later
//! attempt's throttle or refusal no longer proves that nothing started, so
//! the claim is never released on the attempts' word.

/// StartExecution attempts per start (the SDK's default count).
pub const START_ATTEMPTS: usize = 3;

/// What one StartExecution attempt answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartAttempt {
    /// It started the execution.
    Started,
    /// No answer, or a 5xx: it may have taken effect.
    Unanswered,
    /// `ExecutionAlreadyExists` for this start's fresh name: only an earlier
    /// attempt of this start can have made it (AWS's answer once it ended),
    /// so it exists.
    AlreadyExists,
    /// Throttled or over a limit: this attempt did not take effect.
    Throttled,
    /// Refused for good: this attempt did not take effect.
    Refused,
    /// Refused for the request itself (its input): every attempt of it,
    /// answered or not, was refused alike, so none started it.
    Invalid,
}

/// What to do after the attempts so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LaunchVerdict {
    /// The execution exists.
    Started,
    /// Try again, with the same name and input.
    Retry,
    /// No attempt can have started it: release the claim.
    Release,
    /// An attempt may have started it and the attempts are over: only
    /// DescribeExecution can tell (if it cannot, the lease decides).
    AskStepFunctions,
}

/// What to do after `attempts` (in order, the last one just made).
pub fn after_attempts(attempts: &[StartAttempt]) -> LaunchVerdict {
    use StartAttempt::*;
    let Some(last) = attempts.last() else { return LaunchVerdict::Retry };
    match last {
        Started | AlreadyExists => return LaunchVerdict::Started,
        Invalid => return LaunchVerdict::Release,
        _ => {}
    }
    let may_have_started = attempts.contains(&Unanswered);
    let over = attempts.len() >= START_ATTEMPTS || *last == Refused;
    match (over, may_have_started) {
        (false, _) => LaunchVerdict::Retry,
        (true, true) => LaunchVerdict::AskStepFunctions,
        (true, false) => LaunchVerdict::Release,
    }
}

#[cfg(test)]
mod tests {
    use super::StartAttempt::*;
    use super::*;

    #[test]
    fn a_throttle_or_refusal_after_an_unanswered_attempt_never_releases() {
        assert_eq!(after_attempts(&[Unanswered, Throttled, Throttled]), LaunchVerdict::AskStepFunctions);
        assert_eq!(after_attempts(&[Unanswered, Refused]), LaunchVerdict::AskStepFunctions);
        assert_eq!(after_attempts(&[Unanswered, AlreadyExists]), LaunchVerdict::Started);
        assert_eq!(after_attempts(&[AlreadyExists]), LaunchVerdict::Started);
        assert_eq!(after_attempts(&[Unanswered, Unanswered, Unanswered]), LaunchVerdict::AskStepFunctions);
    }

    #[test]
    fn only_attempts_that_cannot_have_started_it_release() {
        assert_eq!(after_attempts(&[Throttled, Throttled, Throttled]), LaunchVerdict::Release);
        assert_eq!(after_attempts(&[Refused]), LaunchVerdict::Release);
        assert_eq!(after_attempts(&[Throttled, Refused]), LaunchVerdict::Release);
        // Its input is refused: the unanswered attempt carried the same input.
        assert_eq!(after_attempts(&[Unanswered, Invalid]), LaunchVerdict::Release);
    }

    #[test]
    fn retries_until_an_answer_or_the_last_attempt() {
        assert_eq!(after_attempts(&[]), LaunchVerdict::Retry);
        assert_eq!(after_attempts(&[Unanswered]), LaunchVerdict::Retry);
        assert_eq!(after_attempts(&[Throttled, Unanswered]), LaunchVerdict::Retry);
        assert_eq!(after_attempts(&[Unanswered, Throttled, Started]), LaunchVerdict::Started);
    }
}
