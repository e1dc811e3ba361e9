//! Instance IDs, validated as Durable Functions validates them, and the
//! storage key derived from them.

use sha2::{Digest, Sha256};
use std::fmt;

/// Durable Functions' limit on instance IDs.
pub const MAX_INSTANCE_ID_CHARS: usize = 256;
const FORBIDDEN: [char; 4] = ['/', '\\', '#', '?'];

/// Why an instance ID was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInstanceId {
    /// No characters.
    #[error("instance ID must not be empty")]
    Empty,
    /// Over 256 characters.
    #[error("instance ID must be at most {MAX_INSTANCE_ID_CHARS} characters, got {0}")]
    TooLong(usize),
    /// A character a URL path segment cannot carry as it is.
    #[error("instance ID must not contain '{0}' (forbidden: '/', '\\', '#', '?')")]
    ForbiddenChar(char),
    /// A control character.
    #[error("instance ID must not contain control characters (found U+{0:04X})")]
    ControlChar(u32),
    /// URLs cannot address them: every HTTP client and front removes dot segments.
    #[error("instance ID must not be \".\" or \"..\" (a URL cannot address them)")]
    DotSegment,
}

/// A valid instance ID: 1–256 characters, no `/ \ # ?`, no control characters, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// An instance ID from a request.
    pub fn parse(raw: &str) -> Result<Self, InvalidInstanceId> {
        if raw.is_empty() {
            return Err(InvalidInstanceId::Empty);
        }
        if raw == "." || raw == ".." {
            return Err(InvalidInstanceId::DotSegment);
        }
        let chars = raw.chars().count();
        if chars > MAX_INSTANCE_ID_CHARS {
            return Err(InvalidInstanceId::TooLong(chars));
        }
        for c in raw.chars() {
            if FORBIDDEN.contains(&c) {
                return Err(InvalidInstanceId::ForbiddenChar(c));
            }
            if c.is_control() {
                return Err(InvalidInstanceId::ControlChar(c as u32));
            }
        }
        Ok(Self(raw.to_owned()))
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The record's partition key. A hash, so that the status consumer can
    /// find the record from an execution name (which embeds it) alone.
    pub fn key(&self) -> InstanceKey {
        InstanceKey::of(&self.0)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hex length of the key: 128 bits of SHA-256, collision-free in practice.
pub const KEY_HEX_LEN: usize = 32;

/// Partition key of an instance's record: the first 128 bits of SHA-256 of
/// the instance ID, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceKey(String);

impl InstanceKey {
    fn of(instance_id: &str) -> Self {
        let digest = Sha256::digest(instance_id.as_bytes());
        Self(hex(&digest[..KEY_HEX_LEN / 2]))
    }

    /// Accepts a key found in an execution name; `None` unless it has the shape of one.
    pub fn from_hex(s: &str) -> Option<Self> {
        let valid = s.len() == KEY_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Self(s.to_owned()))
    }

    /// The key as hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_durable_style_ids() {
        for ok in ["a", "order-42", "ünïcödé 🎉", &"x".repeat(256), "a..b", "with space"] {
            assert_eq!(InstanceId::parse(ok).map(|id| id.to_string()), Ok(ok.to_string()));
        }
    }

    #[test]
    fn refuses_each_rule_with_its_reason() {
        assert_eq!(InstanceId::parse(""), Err(InvalidInstanceId::Empty));
        assert_eq!(InstanceId::parse(&"x".repeat(257)), Err(InvalidInstanceId::TooLong(257)));
        for c in FORBIDDEN {
            assert_eq!(InstanceId::parse(&format!("a{c}b")), Err(InvalidInstanceId::ForbiddenChar(c)));
        }
        assert_eq!(InstanceId::parse("a\u{7}"), Err(InvalidInstanceId::ControlChar(7)));
        assert_eq!(InstanceId::parse("a\nb"), Err(InvalidInstanceId::ControlChar(10)));
        assert_eq!(InstanceId::parse("."), Err(InvalidInstanceId::DotSegment));
        assert_eq!(InstanceId::parse(".."), Err(InvalidInstanceId::DotSegment));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(InstanceId::parse(&"é".repeat(256)).is_ok());
        assert_eq!(InstanceId::parse(&"é".repeat(257)), Err(InvalidInstanceId::TooLong(257)));
    }

    #[test]
    fn key_is_stable_hex_and_round_trips() {
        let key = InstanceId::parse("order-42").map(|id| id.key()).ok();
        let key = key.as_ref().map(InstanceKey::as_str).unwrap_or_default();
        assert_eq!(key.len(), KEY_HEX_LEN);
        assert_eq!(InstanceKey::from_hex(key).map(|k| k.to_string()).as_deref(), Some(key));
        assert_eq!(InstanceKey::from_hex("XYZ"), None);
        assert_eq!(InstanceKey::from_hex(&"G".repeat(KEY_HEX_LEN)), None);
    }
}
