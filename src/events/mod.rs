//! The status Lambda's entry point: EventBridge "Step Functions Execution
//! Status Change" events, in SQS batches → the service.
//!
//! Why a queue between the rule and the Lambda: EventBridge invokes Lambda
//! asynchronously, so its retry policy covers delivery only, and a failing
//! write would get Lambda's two async retries (about 3 minutes). SQS keeps a
//! failing event for days, retries it alone (`ReportBatchItemFailures`), and
//! its dead-letter queue has a native redrive.

mod batch;
mod detail;

pub use crate::sqs::{Error, SqsBatchResponse, SqsEvent, budget};
pub use batch::{handle, handle_batch};
pub use detail::{DETAIL_TYPE, ExecutionStatusChange, Malformed, SOURCE, occurred_at, parse};
