use std::net::SocketAddr;

/// Everything that can go wrong while registering metrics or serving them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A metric's name is already taken in the registry.
    #[error("cannot register metric `{metric}` declared by {declared_by}: the registry already has `{metric}`, {existing}")]
    Clash {
        /// The family name that clashes.
        metric: String,
        /// `Set.field` of the declaration being registered.
        declared_by: String,
        /// What holds the name already, in words.
        existing: String,
    },
    /// A `#[derive(Metrics)]` set was registered in a registry made with a prefix or constant
    /// labels (`Registry::new_custom`).
    #[error("cannot register {set} in a registry with {custom}: the registry would give them to its other collectors and not to the set's families, which are named `{{service}}_{{field}}` by the set; register the set in `Registry::new()` and add target labels in Prometheus' scrape configuration")]
    CustomRegistry {
        /// The set's name.
        set: String,
        /// What the registry was made with.
        custom: String,
    },
    /// The prometheus crate refused a metric.
    #[error("cannot create metric `{metric}` declared by {declared_by}: {source}")]
    Metric {
        /// The family name.
        metric: String,
        /// `Set.field` of the declaration.
        declared_by: String,
        /// The prometheus crate's reason.
        #[source]
        source: prometheus::Error,
    },
    /// An environment variable has a value that cannot be used.
    #[error("{var}={value:?} is not valid: {reason}")]
    InvalidEnv {
        /// The variable's name.
        var: String,
        /// Its value.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// The metrics server could not listen on its address.
    #[error("cannot listen on {addr} for /metrics: {source}")]
    Bind {
        /// The address it tried.
        addr: SocketAddr,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },
    /// The metrics server stopped with an I/O error.
    #[error("the /metrics server on {addr} failed: {source}")]
    Serve {
        /// The address it served.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
