//! The local stack: the whole pipeline on one machine without Docker.
//!
//! The `test-pds` binary (a test PDS and PLC directory hosting signed repositories, a few of them
//! failing as a backfiller must handle), the `test-relay` binary (a steady firehose, `listRepos`
//! of the PDS's accounts, and a stream of labels on them), the ingester, the backfillers and the
//! indexers, all processes on loopback ports, and a real Prometheus scraping them with a local
//! copy of `prometheus.yml` and the project's alert rules. Redis and PostgreSQL are the ones
//! already running; the stack uses its own key prefix and database.
//!
//! One module per concern: [`options`] (what to run), [`process`] (supervision and logs),
//! [`probe`] (readiness), [`prometheus`] (its config), [`stores`] (PostgreSQL and Redis set-up),
//! [`build`] (cargo build of the binaries), [`ports`], and [`error`].

mod build;
mod error;
mod options;
mod ports;
mod probe;
mod process;
mod prometheus;
mod stores;

pub use build::{build_service_binaries, sibling_bin_dir};
pub use error::StackError;
use options::FAILING_ACCOUNTS;
pub use options::{StackOptions, SERVICE_BINARIES, SERVICE_PACKAGES};
pub use prometheus::local_prometheus_config;
pub use stores::{clear_redis_keys, drop_database, with_database};

use build::packages_args;
use ports::free_port;
use process::Supervisor;
use stores::create_database;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A Prometheus target of the stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The job (as in prometheus.yml).
    pub job: String,
    /// `127.0.0.1:PORT`.
    pub instance: String,
    /// The process: `ingester`, `backfiller1`, ...
    pub name: String,
}

/// The running stack. Stop it with [`LocalStack::stop`]; dropping it kills the processes.
pub struct LocalStack {
    supervisor: Supervisor,
    targets: Vec<Target>,
    prometheus_url: String,
    relay_url: String,
    pds_url: String,
    plc_url: String,
    options: StackOptions,
}

impl LocalStack {
    /// Starts everything, each process once the one before it is healthy, and returns when
    /// Prometheus is ready.
    pub async fn start(options: StackOptions) -> Result<LocalStack, StackError> {
        for binary in SERVICE_BINARIES {
            let path = options.bin_dir.join(binary);
            if !path.is_file() {
                return Err(StackError::MissingBinary {
                    path,
                    packages: packages_args(),
                });
            }
        }
        let work_dir = &options.work_dir;
        crate::tool::PROMETHEUS.run(&["--version"], Path::new("."))?;
        std::fs::create_dir_all(work_dir).map_err(|source| StackError::CreateDir {
            path: work_dir.clone(),
            source,
        })?;
        let database_url = create_database(&options.database_url, &options.database).await?;
        // A fresh relay starts at sequence 1: cursors of an earlier run must not skip its events.
        clear_redis_keys(&options.redis_url, &options.key_prefix).await?;

        let mut stack = LocalStack {
            supervisor: Supervisor::new(work_dir.clone()),
            targets: Vec::new(),
            prometheus_url: String::new(),
            relay_url: String::new(),
            pds_url: String::new(),
            plc_url: String::new(),
            options: options.clone(),
        };
        let common = |port: u16| {
            vec![
                ("REDIS_URL".to_owned(), options.redis_url.clone()),
                ("REDIS_KEY_PREFIX".to_owned(), options.key_prefix.clone()),
                ("METRICS_ADDR".to_owned(), "127.0.0.1".to_owned()),
                ("METRICS_PORT".to_owned(), port.to_string()),
                ("RUST_LOG".to_owned(), "info".to_owned()),
            ]
        };

        let (pds_port, plc_port) = (free_port()?, free_port()?);
        stack.pds_url = format!("http://127.0.0.1:{pds_port}");
        stack.plc_url = format!("http://127.0.0.1:{plc_port}");
        let listed = options.backfill_accounts + FAILING_ACCOUNTS;
        stack
            .supervisor
            .spawn(
                "test-pds",
                &options.bin_dir.join("test-pds"),
                &[],
                vec![
                    ("TEST_PDS_ADDR".into(), format!("127.0.0.1:{pds_port}")),
                    ("TEST_PDS_PLC_ADDR".into(), format!("127.0.0.1:{plc_port}")),
                    (
                        "TEST_PDS_ACCOUNTS".into(),
                        options.backfill_accounts.to_string(),
                    ),
                    (
                        "TEST_PDS_RECORDS".into(),
                        options.records_per_repo.to_string(),
                    ),
                    ("RUST_LOG".into(), "info".into()),
                ],
            )
            .await?;
        // Every account hosted before the relay lists them (or a backfiller would miss some).
        let list_repos = format!(
            "{}/xrpc/com.atproto.sync.listRepos?limit=1000",
            stack.pds_url
        );
        stack
            .supervisor
            .wait_for_listed("test-pds", &list_repos, listed)
            .await?;

        let relay_port = free_port()?;
        stack.relay_url = format!("ws://127.0.0.1:{relay_port}");
        stack
            .supervisor
            .spawn(
                "test-relay",
                &options.bin_dir.join("test-relay"),
                &[],
                vec![
                    ("TEST_RELAY_ADDR".into(), format!("127.0.0.1:{relay_port}")),
                    ("TEST_RELAY_RATE".into(), options.relay_rate.to_string()),
                    (
                        "TEST_RELAY_ACCOUNTS".into(),
                        options.relay_accounts.to_string(),
                    ),
                    ("TEST_RELAY_LIST_REPOS".into(), listed.to_string()),
                    ("TEST_RELAY_LABELS_RATE".into(), "1".into()),
                    ("RUST_LOG".into(), "info".into()),
                ],
            )
            .await?;
        stack
            .supervisor
            .wait_for_port("test-relay", relay_port)
            .await?;

        let port = free_port()?;
        let mut env = common(port);
        env.extend([
            ("INGESTER_MODE".to_owned(), "all".to_owned()),
            ("INGESTER_RELAY_HOSTS".to_owned(), stack.relay_url.clone()),
            ("INGESTER_LABELER_HOSTS".to_owned(), stack.relay_url.clone()),
            ("INGESTER_SAMPLE_INTERVAL_MS".to_owned(), "1000".to_owned()),
        ]);
        stack
            .service("ingester", "rsky-ingester", "ingester", port, env)
            .await?;

        for i in 1..=options.backfillers {
            let port = free_port()?;
            let mut env = common(port);
            env.extend([
                ("BACKFILLER_CONSUMER".to_owned(), format!("backfiller{i}")),
                ("BACKFILLER_PLC_URL".to_owned(), stack.plc_url.clone()),
                ("STREAM_RETRY_BACKOFF_MS".to_owned(), "200".to_owned()),
                ("STREAM_RETRY_BACKOFF_MAX_MS".to_owned(), "1000".to_owned()),
                ("BACKFILLER_FETCH_TIMEOUT_MS".to_owned(), "5000".to_owned()),
                ("STREAM_SAMPLE_INTERVAL_MS".to_owned(), "1000".to_owned()),
            ]);
            stack
                .service(
                    &format!("backfiller{i}"),
                    "rsky-backfiller",
                    "backfiller",
                    port,
                    env,
                )
                .await?;
        }

        for i in 1..=options.indexers {
            let port = free_port()?;
            let mut env = common(port);
            env.extend([
                ("DATABASE_URL".to_owned(), database_url.clone()),
                ("INDEXER_CONSUMER".to_owned(), format!("indexer{i}")),
                ("STREAM_SAMPLE_INTERVAL_MS".to_owned(), "1000".to_owned()),
                ("DB_POOL_MAX_SIZE".to_owned(), "8".to_owned()),
            ]);
            stack
                .service(&format!("indexer{i}"), "rsky-indexer", "indexer", port, env)
                .await?;
        }

        stack.start_prometheus().await?;
        Ok(stack)
    }

    /// An error when a process of the stack has exited.
    pub fn check_running(&mut self) -> Result<(), StackError> {
        self.supervisor.check_running()
    }

    /// Stops every process with SIGTERM (the services drain and exit), newest first, killing
    /// any still running after 15 s; returns how each ended.
    pub async fn stop(mut self) -> Vec<(String, String)> {
        self.supervisor.stop().await
    }

    /// `http://127.0.0.1:PORT` of Prometheus.
    pub fn prometheus_url(&self) -> &str {
        &self.prometheus_url
    }

    /// Every target Prometheus scrapes, itself included.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// What to print: every endpoint of the stack, as `(what, URL)`.
    pub fn urls(&self) -> Vec<(String, String)> {
        let mut urls = vec![
            ("Prometheus".to_owned(), self.prometheus_url.clone()),
            (
                "Prometheus targets".to_owned(),
                format!("{}/targets", self.prometheus_url),
            ),
            (
                "Prometheus alerts".to_owned(),
                format!("{}/alerts", self.prometheus_url),
            ),
            (
                "test relay (subscribeRepos)".to_owned(),
                self.relay_url.clone(),
            ),
            (
                "test labeler (subscribeLabels)".to_owned(),
                self.relay_url.clone(),
            ),
            ("test PDS".to_owned(), self.pds_url.clone()),
            ("test PLC".to_owned(), self.plc_url.clone()),
        ];
        for t in self.targets.iter().filter(|t| t.job != "prometheus") {
            urls.push((
                format!("{} /metrics", t.name),
                format!("http://{}/metrics", t.instance),
            ));
        }
        urls.push((
            "logs".to_owned(),
            self.options.work_dir.display().to_string(),
        ));
        urls
    }

    /// Starts a service binary and waits for its `/health`.
    async fn service(
        &mut self,
        name: &str,
        job: &str,
        binary: &str,
        port: u16,
        env: Vec<(String, String)>,
    ) -> Result<(), StackError> {
        let program = self.options.bin_dir.join(binary);
        self.supervisor.spawn(name, &program, &[], env).await?;
        self.supervisor
            .wait_for_http(
                name,
                &format!("http://127.0.0.1:{port}/health"),
                Duration::from_secs(90),
            )
            .await?;
        self.targets.push(Target {
            job: job.to_owned(),
            instance: format!("127.0.0.1:{port}"),
            name: name.to_owned(),
        });
        Ok(())
    }

    async fn start_prometheus(&mut self) -> Result<(), StackError> {
        let addr = match self.options.prometheus_addr.port() {
            0 => SocketAddr::new(self.options.prometheus_addr.ip(), free_port()?),
            _ => self.options.prometheus_addr,
        };
        self.targets.push(Target {
            job: "prometheus".to_owned(),
            instance: addr.to_string(),
            name: "prometheus".to_owned(),
        });
        let config = local_prometheus_config(
            &crate::workspace_root().join("prometheus.yml"),
            &self.targets,
            self.options.scrape_interval,
        )?;
        let path = self.options.work_dir.join("prometheus.yml");
        std::fs::write(&path, config).map_err(|source| StackError::Write {
            path: path.clone(),
            source,
        })?;
        let data = self.options.work_dir.join("prometheus-data");
        let args = vec![
            format!("--config.file={}", path.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address={addr}"),
            "--web.enable-lifecycle".to_owned(),
        ];
        self.supervisor
            .spawn("prometheus", Path::new("prometheus"), &args, Vec::new())
            .await?;
        self.prometheus_url = format!("http://{addr}");
        let ready = format!("{}/-/ready", self.prometheus_url);
        self.supervisor
            .wait_for_http("prometheus", &ready, Duration::from_secs(60))
            .await
    }
}
