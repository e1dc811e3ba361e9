//! Configuration from the environment, validated once at cold start.

use crate::domain::{ConflictPolicy, ReusePolicy, StateMachineArn, Timings};
use std::collections::BTreeMap;

/// The DynamoDB table of records and idempotency keys.
pub const TABLE_NAME: &str = "SINGLETON_TABLE_NAME";
/// The functions: name → state machine ARN, or → `{"stateMachineArn", "onConflict", "reuse"}`.
pub const FUNCTIONS: &str = "SINGLETON_FUNCTIONS";
/// More functions, by state machine ARN (comma-separated), each named after its state machine.
pub const STATE_MACHINES: &str = "SINGLETON_STATE_MACHINES";
/// Default policies by function name: `{"Orders": {"onConflict": "useExisting", "reuse": "allowFailedOnly"}}`.
pub const FUNCTION_POLICIES: &str = "SINGLETON_FUNCTION_POLICIES";
/// How long a claim is protected before another start may take it over.
pub const START_LEASE_SECONDS: &str = "SINGLETON_START_LEASE_SECONDS";
/// How long a non-terminal record is believed without asking Step Functions.
pub const RECONCILE_AFTER_SECONDS: &str = "SINGLETON_RECONCILE_AFTER_SECONDS";
/// How long terminal records are kept (DynamoDB TTL).
pub const RETENTION_DAYS: &str = "SINGLETON_RETENTION_DAYS";
/// The `Retry-After` of retryable answers.
pub const RETRY_AFTER_SECONDS: &str = "SINGLETON_RETRY_AFTER_SECONDS";
/// The base of the links in answers, when the request's own host is not the public one.
pub const PUBLIC_BASE_URL: &str = "SINGLETON_PUBLIC_BASE_URL";
/// How long a start's `Idempotency-Key` replays its answer.
pub const IDEMPOTENCY_WINDOW_SECONDS: &str = "SINGLETON_IDEMPOTENCY_WINDOW_SECONDS";
/// The secret that signs lists' continuation tokens (at least 32 characters),
/// the same in every container of the deployment.
pub const PAGE_TOKEN_KEY: &str = "SINGLETON_PAGE_TOKEN_KEY";
/// The functions' timeout (the template sets it from the same parameter as
/// their `Timeout`): a claim's lease must outlive its starter.
pub const FUNCTION_TIMEOUT_SECONDS: &str = "SINGLETON_FUNCTION_TIMEOUT_SECONDS";

/// Step Functions keeps an ended execution for 90 days; a key's replay must find it.
pub const MAX_IDEMPOTENCY_WINDOW_SECONDS: u32 = 90 * 86_400;

/// How much longer than the function timeout a lease must be at least
/// (clock skew between containers, and the SDK's last attempt).
pub const LEASE_MARGIN_SECONDS: u32 = 30;

/// A configured function: its state machine and its default start policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// The Standard state machine it starts.
    pub state_machine: StateMachineArn,
    /// Its default conflict policy (a request's `?onConflict=` overrides it).
    pub on_conflict: ConflictPolicy,
    /// Its default reuse policy (a request's `?reuse=` overrides it).
    pub reuse: ReusePolicy,
}

impl Function {
    /// A function with the default policies (reject conflicts, allow any reuse).
    pub fn new(state_machine: StateMachineArn) -> Self {
        Function { state_machine, on_conflict: ConflictPolicy::default(), reuse: ReusePolicy::default() }
    }
}

/// A request named a function that is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no function named {name:?} is configured (configured: {configured})")]
pub struct UnknownFunction {
    /// The name asked for.
    pub name: String,
    /// The configured names, comma-separated.
    pub configured: String,
}

/// Why the configuration was refused (the function does not start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable has a value it cannot take.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// The validated configuration, read once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The DynamoDB table.
    pub table_name: String,
    /// Function name (the `{functionName}` of the start route) → state machine and policies.
    pub functions: BTreeMap<String, Function>,
    /// The service's time rules.
    pub timings: Timings,
    /// The `Retry-After` of 202 and retryable answers.
    pub retry_after_secs: u32,
    /// Base of the URLs in check-status payloads; by default taken from the
    /// request's host and stage.
    pub public_base_url: Option<String>,
    /// The key that signs continuation tokens.
    pub page_token_key: String,
}

impl Config {
    /// The configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration from the process environment, for a function that
    /// starts nothing (the status Lambda): a mistake in the functions is logged,
    /// not fatal, so that a stack deployed with one still writes events back.
    pub fn from_env_without_functions() -> Result<Self, ConfigError> {
        Self::read(|name| std::env::var(name).ok(), false)
    }

    /// The configuration from `lookup` (the environment, or a test's variables).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(lookup, true)
    }

    fn read(lookup: impl Fn(&str) -> Option<String>, need_functions: bool) -> Result<Self, ConfigError> {
        let table_name = lookup(TABLE_NAME).filter(|s| !s.is_empty()).ok_or(ConfigError::Missing(TABLE_NAME))?;
        if !valid_table_name(&table_name) {
            return Err(invalid(
                TABLE_NAME,
                format!("{table_name:?} is not a DynamoDB table name (3–255 of A-Z a-z 0-9 _ - .)"),
            ));
        }
        let functions = match functions(lookup(FUNCTIONS), lookup(STATE_MACHINES), lookup(FUNCTION_POLICIES)) {
            Err(error) if !need_functions => {
                tracing::error!(%error, "bad function configuration; this function starts nothing and goes on");
                BTreeMap::new()
            }
            functions => functions?,
        };
        let seconds = |var, default: u32, min: u32| -> Result<u32, ConfigError> {
            match lookup(var) {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<u32>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(invalid(var, format!("{raw:?} is not a whole number ≥ {min}"))),
                },
            }
        };
        let function_timeout = seconds(FUNCTION_TIMEOUT_SECONDS, 30, 1)?;
        let min_lease = function_timeout.saturating_add(LEASE_MARGIN_SECONDS);
        let configured_lease = seconds(START_LEASE_SECONDS, 120, 1)?;
        // Raised, not refused: a refusal would stop every function, the status Lambda included.
        let lease = configured_lease.max(min_lease);
        if lease != configured_lease {
            tracing::warn!(
                configured_lease,
                lease,
                "{START_LEASE_SECONDS} is below the function timeout ({function_timeout} s) + \
                 {LEASE_MARGIN_SECONDS} s: a claim's lease must outlive its starter; using {lease} s"
            );
        }
        let idempotency_window = seconds(IDEMPOTENCY_WINDOW_SECONDS, 3600, 1)?;
        if idempotency_window > MAX_IDEMPOTENCY_WINDOW_SECONDS {
            return Err(invalid(
                IDEMPOTENCY_WINDOW_SECONDS,
                format!(
                    "{idempotency_window} s is longer than the 90 days ({MAX_IDEMPOTENCY_WINDOW_SECONDS} s) Step Functions \
                     keeps ended executions, which a replay must find"
                ),
            ));
        }
        let timings = Timings {
            lease_millis: i64::from(lease) * 1000,
            reconcile_after_millis: i64::from(seconds(RECONCILE_AFTER_SECONDS, 300, 1)?) * 1000,
            retention_secs: i64::from(seconds(RETENTION_DAYS, 30, 1)?) * 86_400,
            idempotency_window_millis: i64::from(idempotency_window) * 1000,
        };
        let retry_after_secs = seconds(RETRY_AFTER_SECONDS, 10, 1)?;
        let public_base_url = lookup(PUBLIC_BASE_URL).filter(|s| !s.is_empty());
        if let Some(url) = &public_base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid(PUBLIC_BASE_URL, format!("{url:?} must start with https:// or http://")));
        }
        let public_base_url = public_base_url.map(|url| url.trim_end_matches('/').to_owned());
        let page_token_key = match lookup(PAGE_TOKEN_KEY).filter(|key| !key.is_empty()) {
            Some(key) if key.len() < 32 => {
                return Err(invalid(PAGE_TOKEN_KEY, format!("is {} characters; at least 32 are needed", key.len())));
            }
            Some(key) => key,
            // Tokens then hold only within this process: fine for one local process, not for a fleet
            // (the http binary warns; the other functions issue no tokens).
            None => (0..64).map(|_| fastrand::alphanumeric()).collect(),
        };
        Ok(Config { table_name, functions, timings, retry_after_secs, public_base_url, page_token_key })
    }

    /// The function named `function_name`, if configured.
    pub fn function(&self, function_name: &str) -> Option<&Function> {
        self.functions.get(function_name)
    }

    /// The function named `function_name`, or why there is none.
    pub fn require(&self, function_name: &str) -> Result<&Function, UnknownFunction> {
        self.function(function_name)
            .ok_or_else(|| UnknownFunction { name: function_name.to_owned(), configured: self.function_names() })
    }

    /// The state machine of the function named `function_name`, if configured.
    pub fn state_machine(&self, function_name: &str) -> Option<&StateMachineArn> {
        self.function(function_name).map(|f| &f.state_machine)
    }

    /// Every configured (function name, state machine).
    pub fn state_machines(&self) -> impl Iterator<Item = (&String, &StateMachineArn)> {
        self.functions.iter().map(|(name, function)| (name, &function.state_machine))
    }

    /// The configured function names, comma-separated (for error messages).
    pub fn function_names(&self) -> String {
        self.functions.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn invalid(var: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { var, reason }
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// Function names appear in URLs and logs: keep them plain.
fn valid_function_name(name: &str) -> bool {
    (1..=80).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// One entry of `SINGLETON_FUNCTIONS`: an ARN, or an ARN with default policies.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum FunctionEntry {
    Arn(String),
    WithPolicies(FunctionWithPolicies),
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FunctionWithPolicies {
    state_machine_arn: String,
    on_conflict: Option<String>,
    reuse: Option<String>,
}

/// Default policies of one function (`SINGLETON_FUNCTION_POLICIES`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Policies {
    on_conflict: Option<String>,
    reuse: Option<String>,
}

/// The configured functions: `SINGLETON_FUNCTIONS` (by name) and
/// `SINGLETON_STATE_MACHINES` (by ARN, named after the state machine: how a
/// stack guards existing state machines from a parameter alone), with
/// `SINGLETON_FUNCTION_POLICIES`' defaults. At least one in all.
fn functions(
    by_name: Option<String>,
    by_arn: Option<String>,
    policies: Option<String>,
) -> Result<BTreeMap<String, Function>, ConfigError> {
    let mut functions = match by_name.filter(|raw| !raw.trim().is_empty()) {
        Some(raw) => parse_functions(&raw)?,
        None => BTreeMap::new(),
    };
    for raw in by_arn.iter().flat_map(|list| list.split(',')).map(str::trim).filter(|arn| !arn.is_empty()) {
        let arn = StateMachineArn::parse(raw).map_err(|e| invalid(STATE_MACHINES, e.to_string()))?;
        let name = arn.name().to_owned();
        if !valid_function_name(&name) {
            return Err(invalid(
                STATE_MACHINES,
                format!(
                    "state machine name {name:?} is not a function name (1–80 of A-Z a-z 0-9 _ - .); name it in {FUNCTIONS}"
                ),
            ));
        }
        match functions.get(&name) {
            Some(known) if known.state_machine != arn => {
                return Err(invalid(
                    STATE_MACHINES,
                    format!(
                        "function {name:?} would be both {} and {arn}: name one of them in {FUNCTIONS}",
                        known.state_machine.as_str(),
                        arn = arn.as_str()
                    ),
                ));
            }
            Some(_) => {}
            None => {
                functions.insert(name, Function::new(arn));
            }
        }
    }
    if functions.is_empty() {
        return Err(invalid(
            FUNCTIONS,
            format!(
                "no function is configured: set {FUNCTIONS} (a JSON object of name → state machine ARN) or {STATE_MACHINES} (ARNs, comma-separated)"
            ),
        ));
    }
    let policies: BTreeMap<String, Policies> = match policies.filter(|raw| !raw.trim().is_empty()) {
        Some(raw) => serde_json::from_str(&raw).map_err(|e| {
            invalid(FUNCTION_POLICIES, format!(r#"{e}; expected {{"<function>": {{"onConflict": …, "reuse": …}}}}"#))
        })?,
        None => BTreeMap::new(),
    };
    for (name, policy) in policies {
        let Some(function) = functions.get_mut(&name) else {
            let names = functions.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(invalid(
                FUNCTION_POLICIES,
                format!("no function named {name:?} is configured (configured: {names})"),
            ));
        };
        let in_function = |e: &dyn std::fmt::Display| invalid(FUNCTION_POLICIES, format!("function {name:?}: {e}"));
        if let Some(on_conflict) = policy.on_conflict {
            function.on_conflict = ConflictPolicy::parse(&on_conflict).map_err(|e| in_function(&e))?;
        }
        if let Some(reuse) = policy.reuse {
            function.reuse = ReusePolicy::parse(&reuse).map_err(|e| in_function(&e))?;
        }
    }
    Ok(functions)
}

/// `{"Name": "arn:aws:states:…:stateMachine:…", "Other": {"stateMachineArn": "…", "onConflict": "useExisting", "reuse": "allowFailedOnly"}}`
fn parse_functions(raw: &str) -> Result<BTreeMap<String, Function>, ConfigError> {
    let expected = r#"a JSON object of function name → state machine ARN (or {"stateMachineArn": …, "onConflict": …, "reuse": …}), e.g. {"Orders":"arn:aws:states:us-east-1:123456789012:stateMachine:Orders"}"#;
    let map: BTreeMap<String, FunctionEntry> =
        serde_json::from_str(raw).map_err(|e| invalid(FUNCTIONS, format!("{e}; expected {expected}")))?;
    map.into_iter()
        .map(|(name, entry)| {
            if !valid_function_name(&name) {
                return Err(invalid(FUNCTIONS, format!("function name {name:?} must be 1–80 of A-Z a-z 0-9 _ - .")));
            }
            let in_function = |e: &dyn std::fmt::Display| invalid(FUNCTIONS, format!("function {name:?}: {e}"));
            let (arn, on_conflict, reuse) = match entry {
                FunctionEntry::Arn(arn) => (arn, None, None),
                FunctionEntry::WithPolicies(f) => (f.state_machine_arn, f.on_conflict, f.reuse),
            };
            let function = Function {
                state_machine: StateMachineArn::parse(&arn).map_err(|e| in_function(&e))?,
                on_conflict: on_conflict
                    .map_or(Ok(ConflictPolicy::default()), |p| ConflictPolicy::parse(&p))
                    .map_err(|e| in_function(&e))?,
                reuse: reuse
                    .map_or(Ok(ReusePolicy::default()), |p| ReusePolicy::parse(&p))
                    .map_err(|e| in_function(&e))?,
            };
            Ok((name, function))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:Wait20";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_page_token_key_is_long_enough_or_made_per_process() {
        let functions = format!(r#"{{"Wait20":"{ARN}"}}"#);
        let short = config(&[(TABLE_NAME, "instances"), (FUNCTIONS, &functions), (PAGE_TOKEN_KEY, "too short")]);
        assert!(matches!(short, Err(ConfigError::Invalid { var: PAGE_TOKEN_KEY, .. })), "{short:?}");
        let key = "k".repeat(32);
        let given = config(&[(TABLE_NAME, "instances"), (FUNCTIONS, &functions), (PAGE_TOKEN_KEY, &key)]);
        assert_eq!(given.map(|c| c.page_token_key).ok(), Some(key));
        let made = config(&[(TABLE_NAME, "instances"), (FUNCTIONS, &functions)]).map(|c| c.page_token_key.len());
        assert_eq!(made.ok(), Some(64));
    }

    #[test]
    fn minimal_configuration_gets_defaults() {
        let functions = format!(r#"{{"Wait20":"{ARN}"}}"#);
        let config = config(&[(TABLE_NAME, "instances"), (FUNCTIONS, &functions)]);
        let config = config.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.state_machine("Wait20").map(StateMachineArn::as_str), Some(ARN));
        assert_eq!(config.state_machine("Other"), None);
        assert_eq!(config.timings.lease_millis, 120_000);
        assert_eq!(config.retry_after_secs, 10);
    }

    #[test]
    fn functions_can_carry_default_policies() {
        let functions =
            format!(r#"{{"A":"{ARN}","B":{{"stateMachineArn":"{ARN}","onConflict":"useExisting","reuse":"reject"}}}}"#);
        let config = config(&[(TABLE_NAME, "instances"), (FUNCTIONS, &functions)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.function("A").map(|f| (f.on_conflict, f.reuse)),
            Some((ConflictPolicy::Reject, ReusePolicy::AllowAll))
        );
        assert_eq!(
            config.function("B").map(|f| (f.on_conflict, f.reuse)),
            Some((ConflictPolicy::UseExisting, ReusePolicy::Reject))
        );
    }

    #[test]
    fn state_machines_by_arn_are_named_after_the_state_machine_and_take_policies_by_name() {
        let other = "arn:aws:states:eu-west-1:123456789012:stateMachine:Orders-v2";
        let listed = format!("{ARN}, {other},");
        let policies = r#"{"Orders-v2": {"onConflict": "useExisting"}, "Wait20": {"reuse": "allowFailedOnly"}}"#;
        let given = config(&[(TABLE_NAME, "instances"), (STATE_MACHINES, &listed), (FUNCTION_POLICIES, policies)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(given.function_names(), "Orders-v2, Wait20");
        assert_eq!(given.state_machine("Orders-v2").map(StateMachineArn::as_str), Some(other));
        assert_eq!(
            given.function("Orders-v2").map(|f| (f.on_conflict, f.reuse)),
            Some((ConflictPolicy::UseExisting, ReusePolicy::AllowAll))
        );
        assert_eq!(
            given.function("Wait20").map(|f| (f.on_conflict, f.reuse)),
            Some((ConflictPolicy::Reject, ReusePolicy::AllowFailedOnly))
        );
        // Both sources, the same function named twice for the same state machine: one function.
        let both = format!(r#"{{"Wait20":"{ARN}","Example":"{other}"}}"#);
        let merged = config(&[(TABLE_NAME, "instances"), (FUNCTIONS, &both), (STATE_MACHINES, ARN)]);
        assert_eq!(merged.map(|c| c.function_names()).ok().as_deref(), Some("Example, Wait20"));
    }

    #[test]
    fn a_state_machine_list_that_cannot_name_its_functions_is_refused_by_name() {
        let elsewhere = "arn:aws:states:eu-west-1:123456789012:stateMachine:Wait20";
        let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
            (vec![(STATE_MACHINES, format!("{ARN},{elsewhere}"))], "would be both"),
            (
                vec![(STATE_MACHINES, "arn:aws:lambda:us-east-1:1:function:f".into())],
                "SINGLETON_STATE_MACHINES is invalid",
            ),
            (vec![(STATE_MACHINES, " , ".into())], "no function is configured"),
            (
                vec![(STATE_MACHINES, ARN.into()), (FUNCTION_POLICIES, r#"{"Nope": {"reuse": "reject"}}"#.into())],
                "no function named \"Nope\" is configured (configured: Wait20)",
            ),
            (
                vec![(STATE_MACHINES, ARN.into()), (FUNCTION_POLICIES, r#"{"Wait20": {"reuse": "never"}}"#.into())],
                "function \"Wait20\": reuse must be one of",
            ),
            (
                vec![(STATE_MACHINES, ARN.into()), (FUNCTION_POLICIES, r#"{"Wait20": {"typo": 1}}"#.into())],
                "unknown field",
            ),
        ];
        for (vars, expected) in cases {
            let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            vars.push((TABLE_NAME, "instances"));
            let message = config(&vars).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(expected), "{vars:?}: {message:?} lacks {expected:?}");
        }
    }

    #[test]
    fn the_status_function_goes_on_with_a_function_mistake_but_not_without_its_table() {
        let vars: BTreeMap<&str, &str> =
            [(TABLE_NAME, "instances"), (STATE_MACHINES, ARN), (FUNCTION_POLICIES, r#"{"Typo": {"reuse": "reject"}}"#)]
                .into_iter()
                .collect();
        assert!(Config::from_lookup(|name| vars.get(name).map(|v| v.to_string())).is_err());
        let status = Config::read(|name| vars.get(name).map(|v| v.to_string()), false);
        assert_eq!(status.map(|c| (c.table_name, c.functions.len())).ok(), Some(("instances".to_owned(), 0)));
        let missing_table = Config::read(|name| (name == STATE_MACHINES).then(|| ARN.to_owned()), false);
        assert!(matches!(missing_table, Err(ConfigError::Missing(TABLE_NAME))));
    }

    #[test]
    fn a_lease_shorter_than_the_function_timeout_plus_its_margin_is_raised_to_it() {
        let functions = format!(r#"{{"Wait20":"{ARN}"}}"#);
        let lease = |vars: &[(&str, &str)]| {
            let base = [(TABLE_NAME, "instances"), (FUNCTIONS, functions.as_str())];
            config(&[&base[..], vars].concat()).map(|c| c.timings.lease_millis).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(lease(&[]), 120_000);
        assert_eq!(lease(&[(START_LEASE_SECONDS, "1")]), 60_000);
        assert_eq!(lease(&[(START_LEASE_SECONDS, "100"), (FUNCTION_TIMEOUT_SECONDS, "90")]), 120_000);
        assert_eq!(lease(&[(START_LEASE_SECONDS, "300"), (FUNCTION_TIMEOUT_SECONDS, "90")]), 300_000);
    }

    #[test]
    fn each_mistake_is_named() {
        let functions = format!(r#"{{"Wait20":"{ARN}"}}"#);
        let bad_policy = format!(r#"{{"W":{{"stateMachineArn":"{ARN}","onConflict":"maybe"}}}}"#);
        let typo = format!(r#"{{"W":{{"stateMachineArn":"{ARN}","typo":1}}}}"#);
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![(FUNCTIONS, &functions)], "SINGLETON_TABLE_NAME is not set"),
            (vec![(TABLE_NAME, "t")], "not a DynamoDB table name"),
            (vec![(TABLE_NAME, "instances")], "no function is configured"),
            (vec![(TABLE_NAME, "instances"), (FUNCTIONS, "Wait20=arn")], "expected a JSON object"),
            (vec![(TABLE_NAME, "instances"), (FUNCTIONS, "{}")], "no function is configured"),
            (vec![(TABLE_NAME, "instances"), (FUNCTIONS, r#"{"a b":"x"}"#)], "function name \"a b\""),
            (vec![(TABLE_NAME, "instances"), (FUNCTIONS, r#"{"W":"arn:aws:lambda:x"}"#)], "is not a state machine ARN"),
            (
                vec![(TABLE_NAME, "instances"), (FUNCTIONS, &bad_policy)],
                "function \"W\": onConflict must be one of reject, useExisting, terminateExisting",
            ),
            (vec![(TABLE_NAME, "instances"), (FUNCTIONS, &typo)], "expected a JSON object"),
            (
                vec![(TABLE_NAME, "instances"), (FUNCTIONS, &functions), (START_LEASE_SECONDS, "0")],
                "SINGLETON_START_LEASE_SECONDS is invalid",
            ),
            (
                vec![(TABLE_NAME, "instances"), (FUNCTIONS, &functions), (IDEMPOTENCY_WINDOW_SECONDS, "7776001")],
                "longer than the 90 days",
            ),
            (
                vec![(TABLE_NAME, "instances"), (FUNCTIONS, &functions), (PUBLIC_BASE_URL, "example.com")],
                "must start with https://",
            ),
        ];
        for (vars, expected) in cases {
            let message = config(&vars).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(expected), "{vars:?}: {message:?} lacks {expected:?}");
        }
    }
}
