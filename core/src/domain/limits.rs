//! Limits on what a request may carry, checked before any AWS call.

/// Step Functions' limit on execution input (and so on a start's body).
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// A stop's cause travels in the URL, which API Gateway limits (10 KiB with
/// the headers), so well under Step Functions' 32768 characters.
pub const MAX_REASON_CHARS: usize = 1024;
