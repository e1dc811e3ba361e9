//! Step Functions execution names and ARNs for instance starts.
//!
//! A name is `{readable prefix}-{instance key}-{start token}`:
//! - the prefix is the instance ID's first characters, mapped to a safe set,
//!   for people reading the console;
//! - the instance key (128-bit hash of the ID) makes names injective in the
//!   ID and lets the status consumer find the record from the name alone;
//! - the start token (time + randomness) makes every start's name unique,
//!   as Step Functions requires for 90 days.

use super::instance_id::{InstanceId, InstanceKey, KEY_HEX_LEN};
use std::fmt;

/// Step Functions' limit on execution names.
pub const MAX_EXECUTION_NAME_LEN: usize = 80;
const PREFIX_MAX_CHARS: usize = 32;
const TIME_CHARS: usize = 9; // 45 bits of epoch milliseconds: good for ~1100 years
const RANDOM_CHARS: usize = 4; // 20 random bits: distinct starts within one millisecond
const TOKEN_LEN: usize = TIME_CHARS + RANDOM_CHARS;
/// Crockford's base32: no I, L, O, U; lowercase to stay readable.
const BASE32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// What makes one start's execution name unique among the starts of an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StartToken {
    millis: u64,
    random: u32,
}

impl StartToken {
    /// A token from a time and a random number.
    pub fn new(millis: u64, random: u32) -> Self {
        Self { millis: millis & ((1 << (5 * TIME_CHARS)) - 1), random: random & ((1 << (5 * RANDOM_CHARS)) - 1) }
    }

    /// A fresh token: now, and 32 random bits.
    pub fn generate(now_millis: i64) -> Self {
        Self::new(u64::try_from(now_millis).unwrap_or(0), fastrand::u32(..))
    }

    fn encode(self, out: &mut String) {
        push_base32(out, self.millis, TIME_CHARS);
        push_base32(out, u64::from(self.random), RANDOM_CHARS);
    }
}

fn push_base32(out: &mut String, value: u64, chars: usize) {
    for i in (0..chars).rev() {
        out.push(BASE32[((value >> (5 * i)) & 31) as usize] as char);
    }
}

/// A valid, unique Step Functions execution name for one start of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecutionName(String);

impl ExecutionName {
    /// The name of one start of `instance_id`.
    pub fn new(instance_id: &InstanceId, token: StartToken) -> Self {
        let mut name = String::with_capacity(MAX_EXECUTION_NAME_LEN);
        name.extend(instance_id.as_str().chars().take(PREFIX_MAX_CHARS).map(readable));
        name.push('-');
        name.push_str(instance_id.key().as_str());
        name.push('-');
        token.encode(&mut name);
        Self(name)
    }

    /// A stored or reported execution name: any name Step Functions accepts
    /// (whether it is one of ours is [`ExecutionName::instance_key`]'s question).
    pub fn parse(raw: &str) -> Result<Self, InvalidExecutionName> {
        if is_valid_execution_name(raw) { Ok(Self(raw.to_owned())) } else { Err(InvalidExecutionName(raw.to_owned())) }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The record key embedded in an execution name, if the name is one of ours.
    pub fn instance_key(name: &str) -> Option<InstanceKey> {
        let token_start = name.len().checked_sub(TOKEN_LEN)?;
        let key_start = token_start.checked_sub(1 + KEY_HEX_LEN)?;
        let token = name.get(token_start..)?;
        let key = name.get(key_start..token_start - 1)?;
        let separators = name.get(token_start - 1..token_start)? == "-"
            && key_start > 1
            && name.get(key_start - 1..key_start)? == "-";
        let token_ok = token.bytes().all(|b| BASE32.contains(&b));
        if separators && token_ok { InstanceKey::from_hex(key) } else { None }
    }
}

/// Characters kept as they are in the readable prefix; others become `_`.
fn readable(c: char) -> char {
    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }
}

/// Step Functions' rule for execution names: 1–80 characters, no whitespace,
/// none of ``< > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /``, no control characters.
pub fn is_valid_execution_name(name: &str) -> bool {
    const FORBIDDEN: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";
    let len = name.chars().count();
    (1..=MAX_EXECUTION_NAME_LEN).contains(&len)
        && name.chars().all(|c| !c.is_whitespace() && !c.is_control() && !FORBIDDEN.contains(c))
}

/// The parts after `resource` of `arn:<partition>:states:<region>:<account>:<resource>:…`,
/// if `raw` is such an ARN with no empty part.
fn states_arn<'a>(raw: &'a str, resource: &str) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "states", region, account, kind, rest @ ..]
            if *kind == resource && [*partition, *region, *account].iter().chain(rest).all(|p| !p.is_empty()) =>
        {
            Some(rest.to_vec())
        }
        _ => None,
    }
}

/// Why a state machine ARN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a state machine ARN (expected arn:<partition>:states:<region>:<account>:stateMachine:<name>)")]
pub struct InvalidStateMachineArn(pub String);

/// `arn:<partition>:states:<region>:<account>:stateMachine:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateMachineArn(String);

impl StateMachineArn {
    /// A state machine ARN from configuration.
    pub fn parse(raw: &str) -> Result<Self, InvalidStateMachineArn> {
        let valid = states_arn(raw, "stateMachine").is_some_and(|rest| rest.len() == 1);
        if valid { Ok(Self(raw.to_owned())) } else { Err(InvalidStateMachineArn(raw.to_owned())) }
    }

    /// The ARN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The state machine's name (the ARN's last part).
    pub fn name(&self) -> &str {
        self.0.rsplit(':').next().unwrap_or_default()
    }

    /// The ARN Step Functions gives an execution of this state machine with
    /// this name: known before the execution exists, so a start that died
    /// can be looked up.
    pub fn execution_arn(&self, name: &ExecutionName) -> ExecutionArn {
        let base = self.0.replacen(":stateMachine:", ":execution:", 1);
        ExecutionArn(format!("{base}:{name}"))
    }
}

/// Why an execution name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a Step Functions execution name (1–80 characters, no whitespace, control characters or < > {{ }} [ ] ? * \" # % \\ ^ | ~ ` $ & , ; : /)"
)]
pub struct InvalidExecutionName(pub String);

/// Why an execution ARN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an execution ARN (expected arn:<partition>:states:<region>:<account>:execution:<state machine>:<name>)"
)]
pub struct InvalidExecutionArn(pub String);

/// `arn:<partition>:states:<region>:<account>:execution:<state machine>:<name>`:
/// one execution, as Step Functions names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutionArn(String);

impl ExecutionArn {
    /// An ARN from a store, an event or an answer of Step Functions.
    pub fn parse(raw: &str) -> Result<Self, InvalidExecutionArn> {
        let valid = states_arn(raw, "execution")
            .is_some_and(|rest| matches!(rest.as_slice(), [_, name] if is_valid_execution_name(name)));
        if valid { Ok(Self(raw.to_owned())) } else { Err(InvalidExecutionArn(raw.to_owned())) }
    }

    /// The ARN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The execution's name: what follows the last `:` (the state machine's name comes before it).
    pub fn name(&self) -> &str {
        self.0.rsplit(':').next().unwrap_or_default()
    }
}

/// As its text: how answers and the scheduled Lambda's result carry it.
impl serde::Serialize for ExecutionArn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Parsed, as from any other source.
impl<'de> serde::Deserialize<'de> for ExecutionArn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// What the text newtypes share: their text wherever text is expected
/// (SDK builders, comparisons with text read back from AWS).
macro_rules! text_type {
    ($type:ty) => {
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $type {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl From<&$type> for String {
            fn from(value: &$type) -> String {
                value.0.clone()
            }
        }
        impl PartialEq<str> for $type {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $type {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<String> for $type {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<$type> for String {
            fn eq(&self, other: &$type) -> bool {
                *self == other.0
            }
        }
        impl PartialEq<$type> for &str {
            fn eq(&self, other: &$type) -> bool {
                *self == other.0
            }
        }
    };
}

text_type!(ExecutionName);
text_type!(ExecutionArn);
text_type!(StateMachineArn);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap_or_else(|e| panic!("test ID {s:?}: {e}"))
    }

    #[test]
    fn name_has_readable_prefix_key_and_token() {
        let name = ExecutionName::new(&id("order 42:ü"), StartToken::new(0, 0));
        assert_eq!(name.as_str(), format!("order_42__-{}-0000000000000", id("order 42:ü").key()));
        assert!(is_valid_execution_name(name.as_str()));
    }

    #[test]
    fn key_is_found_in_names_and_not_in_strangers() {
        let the_id = id(&"ä".repeat(256));
        let name = ExecutionName::new(&the_id, StartToken::generate(1_764_000_000_000));
        assert!(name.as_str().len() <= MAX_EXECUTION_NAME_LEN);
        assert_eq!(ExecutionName::instance_key(name.as_str()), Some(the_id.key()));
        for stranger in ["", "abc", "manual-run-1", &"-".repeat(80), &format!("-{}-0000000000000", the_id.key())] {
            assert_eq!(ExecutionName::instance_key(stranger), None, "{stranger:?}");
        }
        let upper = name.as_str().to_uppercase();
        assert_eq!(ExecutionName::instance_key(&upper), None);
    }

    #[test]
    fn state_machine_arns_are_checked_and_give_execution_arns() {
        let sm = StateMachineArn::parse("arn:aws:states:us-east-1:123456789012:stateMachine:Wait20");
        let sm = sm.unwrap_or_else(|e| panic!("{e}"));
        let name = ExecutionName::new(&id("n"), StartToken::new(0, 0));
        assert_eq!(sm.execution_arn(&name), format!("arn:aws:states:us-east-1:123456789012:execution:Wait20:{name}"));
        for bad in
            ["", "arn:aws:states:us-east-1:123:activity:x", "arn:aws:states:us-east-1:123:stateMachine:", "Wait20"]
        {
            assert!(StateMachineArn::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn execution_names_and_arns_are_parsed_by_step_functions_rules() {
        for good in ["manual-run-1", "ünïcode", &"x".repeat(80)] {
            assert!(ExecutionName::parse(good).is_ok(), "{good:?}");
        }
        for bad in ["", "a b", "a`b", "a:b", "a/b", "tab\t", &"x".repeat(81)] {
            assert!(ExecutionName::parse(bad).is_err(), "{bad:?}");
        }
        for good in [
            "arn:aws:states:us-east-1:123456789012:execution:Wait20:run-1",
            "arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:Wait20:run-1",
            "arn:aws:states:us-east-1:123456789012:execution:Parent/MapLabel:0f1e2d3c",
        ] {
            assert!(ExecutionArn::parse(good).is_ok(), "{good:?}");
        }
        let arn = ExecutionArn::parse("arn:aws:states:us-east-1:123456789012:execution:Wait20:run-1");
        assert_eq!(arn.as_ref().map(ExecutionArn::name), Ok("run-1"));
        for bad in [
            "",
            "arn:aws:states:us-east-1:123456789012:stateMachine:Wait20",
            "arn:aws:states:us-east-1:123456789012:execution:Wait20:",
            "arn:aws:states:us-east-1:123456789012:execution::run-1",
        ] {
            assert!(ExecutionArn::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn names_are_always_valid_for_step_functions(raw in "\\PC{1,256}", millis in any::<u64>(), random in any::<u32>()) {
            if let Ok(the_id) = InstanceId::parse(&raw) {
                let name = ExecutionName::new(&the_id, StartToken::new(millis, random));
                prop_assert!(is_valid_execution_name(name.as_str()), "{name}");
                prop_assert_eq!(ExecutionName::instance_key(name.as_str()), Some(the_id.key()));
            }
        }

        #[test]
        fn distinct_ids_give_distinct_names(a in "[^/\\\\#?\\p{Cc}]{1,256}", b in "[^/\\\\#?\\p{Cc}]{1,256}", millis in any::<u64>(), random in any::<u32>()) {
            prop_assume!(a != b && !matches!(a.as_str(), "." | "..") && !matches!(b.as_str(), "." | ".."));
            let token = StartToken::new(millis, random);
            let (a, b) = (id(&a), id(&b));
            prop_assert_ne!(ExecutionName::new(&a, token), ExecutionName::new(&b, token));
        }

        #[test]
        fn ids_sharing_a_prefix_still_differ(common in "[a-z]{32}", a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            prop_assume!(a != b);
            let token = StartToken::new(1, 1);
            let (a, b) = (id(&format!("{common}{a}")), id(&format!("{common}{b}")));
            prop_assert_ne!(ExecutionName::new(&a, token), ExecutionName::new(&b, token));
        }

        #[test]
        fn each_start_of_one_id_gets_its_own_name(raw in "[^/\\\\#?\\p{Cc}]{1,256}", t1 in any::<(u64, u32)>(), t2 in any::<(u64, u32)>()) {
            let (a, b) = (StartToken::new(t1.0, t1.1), StartToken::new(t2.0, t2.1));
            prop_assume!(a != b && !matches!(raw.as_str(), "." | ".."));
            let the_id = id(&raw);
            prop_assert_ne!(ExecutionName::new(&the_id, a), ExecutionName::new(&the_id, b));
        }
    }

    #[test]
    fn generated_tokens_differ_within_one_millisecond() {
        let the_id = id("same");
        let names: std::collections::HashSet<_> =
            (0..1000).map(|_| ExecutionName::new(&the_id, StartToken::generate(5))).collect();
        // 20 random bits: a few birthday collisions in 1000 are possible, not many.
        assert!(names.len() >= 990, "{} distinct of 1000", names.len());
    }
}
