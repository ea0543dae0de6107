//! Configuration from the environment: each variable read in one place, a default when it is
//! unset, and one clear error line naming the variable when its value is wrong.
//!
//! The readers take a `lookup` function rather than reading the process environment directly,
//! so that services and tests can pass a map instead of mutating global state.
//!
//! ```
//! use rsky_common::config::{Env, var_or};
//!
//! let env = Env::from_pairs([("BATCH_SIZE", "250")]);
//! assert_eq!(var_or(&env, "BATCH_SIZE", 500usize).unwrap(), 250);
//! assert_eq!(var_or(&env, "OTHER", 500usize).unwrap(), 500);
//! let err = var_or::<usize>(&Env::from_pairs([("BATCH_SIZE", "many")]), "BATCH_SIZE", 1).unwrap_err();
//! assert_eq!(err.to_string(), r#"invalid BATCH_SIZE="many": expected a non-negative whole number"#);
//! ```

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// A variable whose value cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub var: String,
    /// Its value.
    pub value: String,
    /// What was expected instead.
    pub reason: String,
}

impl ConfigError {
    /// An error for `var` holding `value`, saying what was expected.
    pub fn new(var: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            var: var.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Where variables come from: the process environment or a fixed map (tests).
#[derive(Clone, Debug, Default)]
pub struct Env {
    fixed: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env { fixed: None }
    }

    /// A fixed set of variables; everything else is unset.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            fixed: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The value of `var`; an empty or whitespace-only value counts as unset.
    pub fn get(&self, var: &str) -> Option<String> {
        let value = match &self.fixed {
            Some(map) => map.get(var).cloned(),
            None => std::env::var(var).ok(),
        }?;
        if value.trim().is_empty() {
            None
        } else {
            Some(value)
        }
    }
}

/// `var` parsed as `T`, or `default` when unset.
pub fn var_or<T>(env: &Env, var: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match env.get(var) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|_| ConfigError::new(var, &value, format!("expected {}", short_type::<T>()))),
    }
}

/// `var` as a string, or `default` when unset.
pub fn string_or(env: &Env, var: &str, default: &str) -> String {
    env.get(var).unwrap_or_else(|| default.to_owned())
}

/// `var` parsed as `T`, which must be at least `min`; `default` when unset.
pub fn var_at_least<T>(env: &Env, var: &str, default: T, min: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display + Copy,
    T::Err: Display,
{
    let value = var_or(env, var, default)?;
    if value < min {
        return Err(ConfigError::new(
            var,
            &value.to_string(),
            format!("must be at least {min}"),
        ));
    }
    Ok(value)
}

/// `var` as a comma-separated list (items trimmed, empty items dropped), or `default` when unset.
/// An explicitly set list with no items is an error.
pub fn list_or(env: &Env, var: &str, default: &[&str]) -> Result<Vec<String>, ConfigError> {
    match env.get(var) {
        None => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
        Some(value) => {
            let items: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if items.is_empty() {
                Err(ConfigError::new(
                    var,
                    &value,
                    "expected a comma-separated list with at least one item",
                ))
            } else {
                Ok(items)
            }
        }
    }
}

/// `var` as one of `choices` (case-insensitive), or `default` when unset.
pub fn choice_or(
    env: &Env,
    var: &str,
    default: &str,
    choices: &[&str],
) -> Result<String, ConfigError> {
    let value = string_or(env, var, default);
    let lower = value.trim().to_ascii_lowercase();
    if choices.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ConfigError::new(
            var,
            &value,
            format!("expected one of {}", choices.join(" | ")),
        ))
    }
}

fn short_type<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    match full {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative whole number",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        _ => full.rsplit("::").next().unwrap_or(full),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_blank_variables_take_the_default() {
        let env = Env::from_pairs([("BLANK", "  ")]);
        assert_eq!(var_or(&env, "BLANK", 7u64).unwrap(), 7);
        assert_eq!(var_or(&env, "MISSING", 8u64).unwrap(), 8);
    }

    #[test]
    fn a_value_below_the_minimum_names_the_variable_and_the_minimum() {
        let env = Env::from_pairs([("SIZE", "0")]);
        let err = var_at_least(&env, "SIZE", 500usize, 1).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid SIZE="0": must be at least 1"#);
    }

    #[test]
    fn lists_are_split_on_commas_and_trimmed() {
        let env = Env::from_pairs([("HOSTS", " a.example , ws://127.0.0.1:1 ,, ")]);
        assert_eq!(
            list_or(&env, "HOSTS", &["x"]).unwrap(),
            ["a.example", "ws://127.0.0.1:1"]
        );
        assert_eq!(list_or(&env, "UNSET", &["x"]).unwrap(), ["x"]);
        let err = list_or(&Env::from_pairs([("HOSTS", ",")]), "HOSTS", &["x"]).unwrap_err();
        assert!(err.to_string().starts_with("invalid HOSTS=\",\""), "{err}");
    }

    #[test]
    fn a_choice_outside_the_list_names_the_choices() {
        let env = Env::from_pairs([("MODE", "everything")]);
        let err = choice_or(&env, "MODE", "all", &["all", "firehose"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid MODE="everything": expected one of all | firehose"#
        );
        let env = Env::from_pairs([("MODE", "Firehose")]);
        assert_eq!(
            choice_or(&env, "MODE", "all", &["all", "firehose"]).unwrap(),
            "firehose"
        );
    }
}
