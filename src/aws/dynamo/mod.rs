//! The instance store on DynamoDB: one item per instance, keyed by `pk`
//! (the instance key), and one per live idempotency key.

mod item;
mod store;

pub use item::{
    BY_STATUS_INDEX, BY_STATUS_PROJECTION, BY_SWEEP_INDEX, LIST_PARTITION, PK, SWEEP_AT, SWEEP_SHARD, SWEEP_SHARDS,
    TTL_ATTRIBUTE,
};
pub use store::DynamoStore;
