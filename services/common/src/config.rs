//! Configuration: one `clap` derive per service ([`Settings`]), every setting both a flag and an
//! environment variable, and one clear error line naming the variable when its value is wrong.
//!
//! A service's settings struct derives `clap::Args` with `env = "..."` and a default on every
//! field; the value parsers here ([`at_least`], [`millis_at_least`], [`one_of`]) give the same
//! reasons in every service. [`Settings::from_pairs`] reads the same struct from a fixed map
//! (tests), without the process environment.
//!
//! ```
//! use rsky_common::config::{at_least, Settings};
//!
//! #[derive(clap::Args, Debug)]
//! struct Demo {
//!     /// Entries per read.
//!     #[arg(long, env = "BATCH_SIZE", default_value = "500", value_parser = at_least(1usize))]
//!     batch_size: usize,
//! }
//! impl Settings for Demo {}
//!
//! assert_eq!(Demo::from_pairs([("BATCH_SIZE", "250")]).unwrap().batch_size, 250);
//! assert_eq!(Demo::from_pairs([("OTHER", "1")]).unwrap().batch_size, 500);
//! let err = Demo::from_pairs([("BATCH_SIZE", "many")]).unwrap_err();
//! assert_eq!(err.to_string(), r#"invalid BATCH_SIZE="many": expected a non-negative whole number"#);
//! let err = Demo::from_pairs([("BATCH_SIZE", "0")]).unwrap_err();
//! assert_eq!(err.to_string(), r#"invalid BATCH_SIZE="0": must be at least 1"#);
//! ```
//!
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

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

/// A service's settings: a `clap::Args` struct whose every field has `env = "..."` and a default.
pub trait Settings: clap::Args + clap::FromArgMatches + Sized {
    /// Checks that span several fields (a value parser sees one).
    fn check(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Variables renamed since an earlier version: the old name is read when the new one is
    /// unset, with a warning naming the new one, so existing deployments keep working.
    const RENAMED: &'static [Renamed] = &[];

    /// Reads the settings from `pairs` of variable and value alone (the process environment is
    /// not read): what tests use. A blank value counts as unset, as in the environment.
    fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let command = Self::augment_args(clap::Command::new("settings").no_binary_name(true));
        let vars = env_names(&command);
        let command = command.mut_args(|arg| arg.env(None::<&'static str>));
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(var, value)| (var.as_ref().to_owned(), value.as_ref().to_owned()))
            .collect();
        let lookup = |name: &str| {
            pairs
                .iter()
                .find(|(var, _)| var == name)
                .map(|(_, value)| value.clone())
        };
        let renamed = renamed_values(Self::RENAMED, lookup)?;
        let renamed = renamed
            .iter()
            .filter_map(|r| Some((r.new.to_owned(), r.value.clone()?)));
        let mut args = Vec::new();
        for (var, value) in pairs.iter().cloned().chain(renamed) {
            let (var, value) = (var.as_str(), value.as_str());
            if value.trim().is_empty() {
                continue;
            }
            if let Some((long, _)) = vars.iter().find(|(_, env)| env == var) {
                args.push(format!("--{long}={value}"));
            }
        }
        let matches = command
            .try_get_matches_from(args)
            .map_err(|err| config_error(&err, &vars))?;
        let settings = Self::from_arg_matches(&matches).map_err(|err| config_error(&err, &vars))?;
        settings.check()?;
        Ok(settings)
    }
}

/// A variable renamed since an earlier version ([`Settings::RENAMED`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renamed {
    /// The name it had.
    pub old: &'static str,
    /// The name it has.
    pub new: &'static str,
    /// The old value counted one less (retries after the first attempt, where the new name
    /// counts deliveries).
    plus_one: bool,
}

impl Renamed {
    /// `old` is now `new`, with the same meaning.
    pub const fn same(old: &'static str, new: &'static str) -> Self {
        Renamed {
            old,
            new,
            plus_one: false,
        }
    }

    /// `old` counted one less than `new` does: its value `n` is read as `n + 1`.
    pub const fn plus_one(old: &'static str, new: &'static str) -> Self {
        Renamed {
            old,
            new,
            plus_one: true,
        }
    }

    /// The value under the new name of `value` under the old one.
    pub fn convert(&self, value: &str) -> Result<String, ConfigError> {
        if !self.plus_one {
            return Ok(value.to_owned());
        }
        let number: u64 = value.trim().parse().map_err(|_| {
            ConfigError::new(self.old, value, "expected a non-negative whole number")
        })?;
        Ok(number.saturating_add(1).to_string())
    }
}

/// What reading a renamed variable came to: the value to use under the new name (none when
/// the new name is set, and the old one is ignored) and the warning to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenamedValue {
    /// The new name.
    pub new: &'static str,
    /// The value for it, when it is taken from the old name.
    pub value: Option<String>,
    /// What the operator should change, naming the new variable.
    pub warning: String,
}

/// The renamed variables of `renamed` that `lookup` finds set under their old names (a blank
/// value counts as unset): each with its value under the new name, or ignored when the new
/// name is set too, and a warning naming the new name.
pub fn renamed_values(
    renamed: &[Renamed],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<RenamedValue>, ConfigError> {
    let set = |var: &str| lookup(var).filter(|value| !value.trim().is_empty());
    let mut out = Vec::new();
    for rename in renamed {
        let Some(old_value) = set(rename.old) else {
            continue;
        };
        let (old, new) = (rename.old, rename.new);
        if set(new).is_some() {
            out.push(RenamedValue {
                new,
                value: None,
                warning: format!("{old} is ignored: {new} is set (remove {old})"),
            });
            continue;
        }
        let value = rename.convert(&old_value)?;
        let warning = if rename.plus_one {
            format!("{old} is deprecated: read as {new}={value} (one more: {new} counts the first delivery too); set {new} instead")
        } else {
            format!("{old} is deprecated: read as {new}; set {new} instead")
        };
        out.push(RenamedValue {
            new,
            value: Some(value),
            warning,
        });
    }
    Ok(out)
}

/// `(long flag, environment variable)` of every argument of `command` that has both.
pub fn env_names(command: &clap::Command) -> Vec<(String, String)> {
    command
        .get_arguments()
        .filter_map(|arg| {
            Some((
                arg.get_long()?.to_owned(),
                arg.get_env()?.to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

/// The variable, value and reason of a clap error about one value; `vars` maps flags to
/// variables.
pub fn config_error(err: &clap::Error, vars: &[(String, String)]) -> ConfigError {
    use clap::error::{ContextKind, ContextValue};
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(list)) => Some(list.join(" | ")),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg).unwrap_or_default();
    // "--batch-size <INGESTER_BATCH_SIZE>" -> the variable of --batch-size.
    let long = arg
        .trim_start_matches('-')
        .split([' ', '=', '<'])
        .next()
        .unwrap_or_default();
    let var = vars
        .iter()
        .find(|(l, _)| l == long)
        .map_or(arg.clone(), |(_, env)| env.clone());
    let value = context(ContextKind::InvalidValue).unwrap_or_default();
    let reason = match (
        std::error::Error::source(err),
        context(ContextKind::ValidValue),
    ) {
        (Some(source), _) => source.to_string(),
        (None, Some(valid)) => format!("expected one of {valid}"),
        (None, None) => err
            .render()
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned(),
    };
    ConfigError { var, value, reason }
}

/// A value parser: a number of type `T` at least `min`.
pub fn at_least<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |value: &str| {
        let number: T = value
            .trim()
            .parse()
            .map_err(|_| format!("expected {}", short_type::<T>()))?;
        if number < min {
            return Err(format!("must be at least {min}"));
        }
        Ok(number)
    }
}

/// A value parser: a whole number of milliseconds, at least `min`, as a [`Duration`].
pub fn millis_at_least(
    min: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    let number = at_least(min);
    move |value: &str| number(value).map(Duration::from_millis)
}

/// A value parser: a whole number of seconds, at least `min`, as a [`Duration`].
pub fn seconds_at_least(
    min: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    let number = at_least(min);
    move |value: &str| number(value).map(Duration::from_secs)
}

/// A value parser: `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// A value parser: one of `choices`, case-insensitive, returned in lower case.
pub fn one_of(
    choices: &'static [&'static str],
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |value: &str| {
        let lower = value.trim().to_ascii_lowercase();
        if choices.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(format!("expected one of {}", choices.join(" | ")))
        }
    }
}

/// A value parser: a comma-separated list (items trimmed, empty items dropped) with at least one
/// item.
pub fn list(value: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        Err("expected a comma-separated list with at least one item".to_owned())
    } else {
        Ok(items)
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

/// The default name of a service's consumer in its consumer groups:
/// `{service}-{host}-{pid}-{suffix}`, where `host` is `$HOSTNAME` (else `/etc/hostname`, else
/// `localhost`), `pid` the process ID and `suffix` four random hex digits; characters other
/// than letters, digits, `.`, `_` and `-` become `-`.
///
/// Unique per process: two replicas, even on one host or with one container hostname, never
/// share a pending entries list. Not stable across restarts: what a stopped process left pending
/// is taken over by the group's other consumers (or its successor) once it has been idle for the
/// claim time. A deployment that wants a restarted process to resume its own pending entries at
/// once gives each replica a stable unique name (e.g. its StatefulSet pod name) instead.
///
/// ```
/// let name = rsky_common::config::default_consumer_name("backfiller");
/// assert!(name.starts_with("backfiller-"));
/// assert_ne!(name, rsky_common::config::default_consumer_name("backfiller"));
/// ```
pub fn default_consumer_name(service: &str) -> String {
    let host = hostname().unwrap_or_else(|| "localhost".to_owned());
    consumer_name(service, &host, std::process::id(), random_suffix())
}

/// This host's name: `$HOSTNAME`, else `/etc/hostname`; `None` when neither names one.
pub fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
}

/// `{service}-{host}-{pid}-{suffix:04x}`, with characters outside `[A-Za-z0-9._-]` as `-`.
fn consumer_name(service: &str, host: &str, pid: u32, suffix: u16) -> String {
    format!("{service}-{host}-{pid}-{suffix:04x}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Sixteen random bits: std's randomly keyed hasher (a fresh key per call) over the time.
fn random_suffix() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_name_is_service_host_pid_and_suffix_with_unsafe_characters_replaced() {
        assert_eq!(
            consumer_name("backfiller", "pod 7/a", 42, 0xbeef),
            "backfiller-pod-7-a-42-beef"
        );
    }

    #[test]
    fn default_consumer_names_differ_between_calls_and_name_the_pid() {
        let names: std::collections::HashSet<String> =
            (0..20).map(|_| default_consumer_name("svc")).collect();
        assert!(names.len() > 1, "a random suffix: {names:?}");
        for name in &names {
            assert!(name.starts_with("svc-"), "{name}");
            assert!(
                name.contains(&format!("-{}-", std::process::id())),
                "{name}"
            );
        }
    }

    #[derive(clap::Args, Debug)]
    struct Demo {
        #[arg(long, env = "HOSTS", default_value = "x", value_parser = list)]
        hosts: ::std::vec::Vec<String>,
        #[arg(long, env = "MODE", default_value = "all", value_parser = one_of(&["all", "firehose"]))]
        mode: String,
        #[arg(long, env = "SIZE", default_value = "500", value_parser = at_least(1usize))]
        size: usize,
        #[arg(long, env = "WAIT_MS", default_value = "1000", value_parser = millis_at_least(1))]
        wait: Duration,
        #[arg(long, env = "ON", default_value = "false", value_parser = boolean, action = clap::ArgAction::Set)]
        on: bool,
    }
    impl Settings for Demo {}

    #[test]
    fn unset_and_blank_variables_take_the_default() {
        let demo = Demo::from_pairs([("SIZE", "  ")]).unwrap();
        assert_eq!(demo.size, 500);
        assert_eq!(demo.wait, Duration::from_secs(1));
        assert!(!demo.on);
    }

    #[test]
    fn a_value_below_the_minimum_names_the_variable_and_the_minimum() {
        let err = Demo::from_pairs([("SIZE", "0")]).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid SIZE="0": must be at least 1"#);
        let err = Demo::from_pairs([("ON", "maybe")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid ON="maybe": expected true or false"#
        );
    }

    #[test]
    fn lists_are_split_on_commas_and_trimmed() {
        let demo = Demo::from_pairs([("HOSTS", " a.example , ws://127.0.0.1:1 ,, ")]).unwrap();
        assert_eq!(demo.hosts, ["a.example", "ws://127.0.0.1:1"]);
        assert_eq!(Demo::from_pairs([("X", "1")]).unwrap().hosts, ["x"]);
        let err = Demo::from_pairs([("HOSTS", ",")]).unwrap_err();
        assert!(err.to_string().starts_with("invalid HOSTS=\",\""), "{err}");
    }

    #[test]
    fn a_choice_outside_the_list_names_the_choices() {
        let err = Demo::from_pairs([("MODE", "everything")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid MODE="everything": expected one of all | firehose"#
        );
        assert_eq!(
            Demo::from_pairs([("MODE", "Firehose")]).unwrap().mode,
            "firehose"
        );
    }

    #[test]
    fn a_renamed_variable_is_read_with_a_warning_naming_the_new_one() {
        let renamed = [
            Renamed::same("OLD_A", "NEW_A"),
            Renamed::same("OLD_B", "NEW_B"),
            Renamed::same("OLD_C", "NEW_C"),
            Renamed::plus_one("OLD_RETRIES", "NEW_DELIVERIES"),
        ];
        let env = |var: &str| {
            match var {
                "OLD_A" => Some("1"),
                "OLD_B" => Some("2"),
                "NEW_B" => Some("3"),
                "OLD_C" => Some(" "),
                "OLD_RETRIES" => Some("3"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let values = renamed_values(&renamed, env).unwrap();
        let taken: Vec<_> = values.iter().map(|r| (r.new, r.value.as_deref())).collect();
        assert_eq!(
            taken,
            [
                ("NEW_A", Some("1")),
                ("NEW_B", None),
                ("NEW_DELIVERIES", Some("4"))
            ],
            "the new name wins; a blank old value is unset; retries are one delivery less"
        );
        assert_eq!(
            values[0].warning,
            "OLD_A is deprecated: read as NEW_A; set NEW_A instead"
        );
        assert!(values[1].warning.contains("OLD_B is ignored: NEW_B is set"));
        assert!(values[2].warning.contains("set NEW_DELIVERIES instead"));
    }
}
