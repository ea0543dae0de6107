//! Typed labels: label values that the compiler checks, each label set numbered densely so that a
//! typed family is an array of series indexed by it.
//!
//! A fieldless enum is one label ([`LabelValue`], derived); a struct of such enums
//! (`#[derive(LabelSet)]`, label names = field names) or a tuple of them is several. Every
//! [`LabelSet`] knows its label names, each label's values, how many combinations there are, and
//! the index of a combination, `0..CARDINALITY`.

/// A set of labels with a fixed list of values each: the label type `L` of a typed family
/// (`IntCounterFamily<L>`, ...).
///
/// Derived for a label enum (`#[derive(LabelValue)]`, one label) and for a struct of label enums
/// (`#[derive(LabelSet)]`, one label per field, named after it); implemented for tuples of up to
/// four label enums (label names from each enum).
///
/// ```
/// use rsky_metrics_runtime::{LabelSet, LabelValue};
///
/// /// Which collection a record belongs to.
/// #[derive(Clone, Copy, LabelValue)]
/// pub enum Collection {
///     #[label(rename = "app.bsky.feed.post")]
///     Post,
///     #[label(rename = "app.bsky.feed.like")]
///     Like,
/// }
///
/// /// What happened to the record.
/// #[derive(Clone, Copy, LabelValue)]
/// pub enum Action {
///     Create,
///     Delete,
/// }
///
/// /// A record's labels: `collection` and `action`.
/// #[derive(Clone, Copy, LabelSet)]
/// pub struct Record {
///     pub collection: Collection,
///     pub action: Action,
/// }
///
/// assert_eq!(Record::LABEL_NAMES, ["collection", "action"]);
/// assert_eq!(Record::CARDINALITY, 4);
/// let like_delete = Record { collection: Collection::Like, action: Action::Delete };
/// assert_eq!(like_delete.index(), 3);
/// assert_eq!(<(Collection, Action)>::LABEL_NAMES, ["collection", "action"]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a label type",
    label = "a typed family is labeled by a label type",
    note = "derive `LabelValue` on a fieldless enum (one label), or `LabelSet` on a struct of such enums (one label per field); for open-ended string values use an `IntCounterVec` with `#[metric(labels = [\"...\"])]`"
)]
pub trait LabelSet {
    /// The label names, in order.
    const LABEL_NAMES: &'static [&'static str];
    /// Each label's possible values, in the order of [`LABEL_NAMES`](Self::LABEL_NAMES).
    const LABEL_VALUES: &'static [&'static [&'static str]];
    /// How many combinations there are: the product of each label's number of values.
    const CARDINALITY: usize;
    /// This combination's number, `0..CARDINALITY`: the first label varies slowest.
    fn index(&self) -> usize;
}

/// One label: a fieldless enum whose variants are the label's values, `#[derive(LabelValue)]`.
///
/// Each value is the variant's name in snake_case (`DbTimeout` -> `db_timeout`), or what
/// `#[label(rename = "...")]` gives. The label's name, when the enum labels a family alone, is the
/// enum's name in snake_case (`ErrorKind` -> `error_kind`) or `#[label(name = "...")]` on the
/// enum; in a `#[derive(LabelSet)]` struct it is the field's name.
///
/// ```
/// use rsky_metrics_runtime::{LabelSet, LabelValue};
///
/// /// What went wrong.
/// #[derive(Clone, Copy, Debug, LabelValue)]
/// #[label(name = "kind")]
/// pub enum ErrorKind {
///     Redis,
///     DbTimeout,
///     #[label(rename = "bad_input")]
///     InvalidInput,
///     #[label(panic)]
///     Panic,
/// }
///
/// assert_eq!(ErrorKind::LABEL_NAME, "kind");
/// assert_eq!(ErrorKind::VALUES, ["redis", "db_timeout", "bad_input", "panic"]);
/// assert_eq!(ErrorKind::InvalidInput.as_str(), "bad_input");
/// assert_eq!(ErrorKind::DbTimeout.index(), 1);
/// ```
///
/// Compile errors, each at the variant or attribute at fault: a variant with fields, two variants
/// with the same value after renaming, an empty value, a label name that breaks the naming rules,
/// more than one `#[label(panic)]`.
pub trait LabelValue: LabelSet {
    /// The label's name when the enum labels a family alone.
    const LABEL_NAME: &'static str;
    /// The label's values, in variant order.
    const VALUES: &'static [&'static str];

    /// This value as exposed.
    fn as_str(&self) -> &'static str {
        Self::VALUES[self.index()]
    }
}

/// The value a `#[counted(errors = <typed family>)]` counts a panic under: the variant marked
/// `#[label(panic)]`.
#[diagnostic::on_unimplemented(
    message = "`#[counted]` cannot count a panic under a `{Self}`",
    label = "a panic in the counted function is an error, counted under the label type's panic value",
    note = "mark the variant a panic counts as with `#[label(panic)]` (for example a `Panic` variant of your error-kind enum)"
)]
pub trait PanicLabel: LabelSet + Sized {
    /// The value a panic counts under.
    const PANIC: Self;
}

/// Turns an error into the label it counts under in `#[counted(errors = <typed family>)]`.
///
/// ```
/// use rsky_metrics_runtime::{counted, CountAs, IntCounter, IntCounterFamily, LabelValue, Metrics};
///
/// /// What went wrong.
/// #[derive(Clone, Copy, LabelValue)]
/// #[label(name = "kind")]
/// pub enum FetchErrorKind {
///     Timeout,
///     NotFound,
///     #[label(panic)]
///     Panic,
/// }
///
/// #[derive(Debug)]
/// pub enum FetchError {
///     Timeout,
///     NotFound(String),
/// }
///
/// impl CountAs<FetchErrorKind> for FetchError {
///     fn count_as(&self) -> FetchErrorKind {
///         match self {
///             FetchError::Timeout => FetchErrorKind::Timeout,
///             FetchError::NotFound(_) => FetchErrorKind::NotFound,
///         }
///     }
/// }
///
/// /// Metrics of the fetch example.
/// #[derive(Metrics)]
/// #[metrics(service = "count_as_doc")]
/// pub struct FetchMetrics {
///     /// Fetches made
///     pub fetches: IntCounter,
///     /// Fetches that failed, by kind
///     pub fetch_errors: IntCounterFamily<FetchErrorKind>,
/// }
///
/// #[counted(FetchMetrics, events = fetches, errors = fetch_errors)]
/// fn fetch(key: &str) -> Result<u64, FetchError> {
///     match key {
///         "slow" => Err(FetchError::Timeout),
///         "gone" => Err(FetchError::NotFound(key.to_owned())),
///         _ => Ok(1),
///     }
/// }
///
/// let _ = fetch("slow");
/// let _ = fetch("gone");
/// let _ = fetch("ok");
/// let metrics = FetchMetrics::global();
/// assert_eq!(metrics.fetches.get(), 3);
/// assert_eq!(metrics.fetch_errors[FetchErrorKind::Timeout].get(), 1);
/// assert_eq!(metrics.fetch_errors[FetchErrorKind::NotFound].get(), 1);
/// assert_eq!(metrics.fetch_errors[FetchErrorKind::Panic].get(), 0);
/// ```
#[diagnostic::on_unimplemented(
    message = "`#[counted]` cannot count a `{Self}` by kind: it does not convert into `{L}`",
    label = "the error type of this return value",
    note = "implement `rsky_metrics_runtime::CountAs<{L}> for {Self}`, mapping each error to the label value it counts under"
)]
pub trait CountAs<L> {
    /// The label this error counts under.
    fn count_as(&self) -> L;
}

macro_rules! tuple_label_set {
    ($($name:ident),+) => {
        impl<$($name: LabelValue),+> LabelSet for ($($name,)+) {
            const LABEL_NAMES: &'static [&'static str] = &[$($name::LABEL_NAME),+];
            const LABEL_VALUES: &'static [&'static [&'static str]] = &[$($name::VALUES),+];
            const CARDINALITY: usize = 1 $(* $name::CARDINALITY)+;

            #[inline]
            #[allow(non_snake_case)]
            fn index(&self) -> usize {
                let ($($name,)+) = self;
                let mut index = 0;
                $(index = index * $name::CARDINALITY + $name.index();)+
                index
            }
        }
    };
}
tuple_label_set!(A, B);
tuple_label_set!(A, B, C);
tuple_label_set!(A, B, C, D);

/// The label values of combination `index` of `L`, in label order.
pub(crate) fn values_of<L: LabelSet>(index: usize) -> Vec<&'static str> {
    let mut rest = index;
    let mut values: Vec<&'static str> = L::LABEL_VALUES
        .iter()
        .rev()
        .map(|values| {
            let len = values.len().max(1);
            let value = values.get(rest % len).copied().unwrap_or_default();
            rest /= len;
            value
        })
        .collect();
    values.reverse();
    values
}

/// Whether `names` holds `name`; a `const fn` for the derive's compile-time checks.
pub const fn labels_contain(names: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < names.len() {
        if str_eq(names[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether a label name appears twice in `names` (two labels of the same enum in a tuple).
pub const fn labels_repeat(names: &[&str]) -> bool {
    let mut i = 0;
    while i < names.len() {
        let mut j = i + 1;
        while j < names.len() {
            if str_eq(names[i], names[j]) {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
