//! The instance store on DynamoDB: one item per instance, keyed by `pk`
//! (the instance key), and one per live idempotency key.

mod item;
mod store;

pub use item::{PK, TTL_ATTRIBUTE};
pub use store::DynamoStore;
