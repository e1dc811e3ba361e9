//! The AWS adapters: the two ports on DynamoDB and Step Functions, and how
//! their SDK errors map to the ports' errors. Nothing else here: the wiring
//! is `crate::startup`.

pub mod dynamo;
pub(crate) mod sdk_error;
pub mod sfn;

pub use dynamo::DynamoStore;
pub use sfn::StepFunctions;
