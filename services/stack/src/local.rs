//! The local stack: the whole pipeline on one machine without Docker.
//!
//! The `test-pds` binary (a test PDS and PLC directory hosting signed repositories, a few of them
//! failing as a backfiller must handle), the `test-relay` binary (a steady firehose, `listRepos`
//! of the PDS's accounts, and a stream of labels on them), the ingester, the backfillers and the
//! indexers, all processes on loopback ports, and a real Prometheus scraping them with a local
//! copy of `prometheus.yml` and the project's alert rules. Redis and PostgreSQL are the ones
//! already running; the stack uses its own key prefix and database.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_yaml::Value;
use tokio::process::{Child, Command};

/// The binaries of other packages that the stack runs.
pub const SERVICE_BINARIES: [&str; 5] = [
    "test-pds",
    "test-relay",
    "ingester",
    "backfiller",
    "indexer",
];

/// The packages that build [`SERVICE_BINARIES`].
pub const SERVICE_PACKAGES: [&str; 4] = [
    "rsky-testkit",
    "rsky-ingester",
    "rsky-backfiller",
    "rsky-indexer",
];

/// The accounts `test-pds` hosts after the served ones: a bad signature, a truncated CAR, an
/// HTTP 500 and a missing repository (`rsky_testkit::pds::LOAD_FAILURES`).
const FAILING_ACCOUNTS: usize = rsky_testkit::pds::LOAD_FAILURES.len();

/// What to run, and where.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Where the [`SERVICE_BINARIES`] are.
    pub bin_dir: PathBuf,
    /// Logs, the Prometheus config copy and its data go here.
    pub work_dir: PathBuf,
    /// Redis (must be running).
    pub redis_url: String,
    /// A PostgreSQL URL the stack can create its database with (must be running).
    pub database_url: String,
    /// The database the indexers write to; created when missing.
    pub database: String,
    /// Prefix of every Redis key the services use.
    pub key_prefix: String,
    /// Prometheus's scrape and rule evaluation interval.
    pub scrape_interval: Duration,
    /// Prometheus's address (port 0: a free port).
    pub prometheus_addr: SocketAddr,
    /// Firehose events per second from the test relay.
    pub relay_rate: u64,
    /// Accounts posting on the firehose.
    pub relay_accounts: usize,
    /// Repositories on the test PDS that backfill successfully (a few failing ones are added).
    pub backfill_accounts: usize,
    /// Records in each of those repositories.
    pub records_per_repo: usize,
    /// Backfiller processes.
    pub backfillers: usize,
    /// Indexer processes.
    pub indexers: usize,
}

impl StackOptions {
    /// Defaults for a demo on this machine: Redis and PostgreSQL on 127.0.0.1, Prometheus on
    /// 127.0.0.1:9090 scraping every 15 s (as in production), 2 backfillers and 2 indexers.
    pub fn demo(bin_dir: PathBuf, work_dir: PathBuf) -> Self {
        StackOptions {
            bin_dir,
            work_dir,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
            database: "rsky_local_stack".to_owned(),
            key_prefix: "local-stack:".to_owned(),
            scrape_interval: Duration::from_secs(15),
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            relay_rate: 100,
            relay_accounts: 500,
            backfill_accounts: 20,
            records_per_repo: 30,
            backfillers: 2,
            indexers: 2,
        }
    }
}

/// Why the stack could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A binary is not built.
    #[error(
        "{path} is missing: build it with `cargo build {packages}` (the local-stack command does)"
    )]
    MissingBinary {
        /// The expected path.
        path: PathBuf,
        /// `-p ...` arguments that build it.
        packages: String,
    },
    /// A process could not be started.
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        /// Its name in the stack.
        name: String,
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A process exited, or never became ready.
    #[error("{name} {what}; the end of its log ({log}):\n{tail}")]
    NotRunning {
        /// Its name in the stack.
        name: String,
        /// What happened.
        what: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// PostgreSQL refused the database set-up.
    #[error("cannot create database {database} through {url}: {message}")]
    Database {
        /// The database.
        database: String,
        /// The admin URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The work directory or a config file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Redis refused the clean-up of the stack's keys.
    #[error("cannot clear the Redis keys {prefix}* at {url}: {message}")]
    Redis {
        /// The key prefix.
        prefix: String,
        /// The Redis URL.
        url: String,
        /// The client's message.
        message: String,
    },
    /// The project's prometheus.yml could not be read.
    #[error(transparent)]
    Config(#[from] crate::Error),
    /// Prometheus is not installed.
    #[error(transparent)]
    Tool(#[from] crate::tool::ToolError),
}

/// One process of the stack.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

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
    processes: Vec<Process>,
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
        std::fs::create_dir_all(work_dir).map_err(|source| StackError::Write {
            path: work_dir.clone(),
            source,
        })?;
        let database_url = create_database(&options.database_url, &options.database).await?;
        // A fresh relay starts at sequence 1: cursors of an earlier run must not skip its events.
        clear_redis_keys(&options.redis_url, &options.key_prefix).await?;

        let mut stack = LocalStack {
            processes: Vec::new(),
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
            .wait_for_listed("test-pds", &list_repos, listed)
            .await?;

        let relay_port = free_port()?;
        stack.relay_url = format!("ws://127.0.0.1:{relay_port}");
        stack
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
        stack.wait_for_port("test-relay", relay_port).await?;

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
                ("BACKFILLER_RETRY_BACKOFF_MS".to_owned(), "200".to_owned()),
                (
                    "BACKFILLER_RETRY_BACKOFF_MAX_MS".to_owned(),
                    "1000".to_owned(),
                ),
                ("BACKFILLER_FETCH_TIMEOUT_MS".to_owned(), "5000".to_owned()),
                (
                    "BACKFILLER_SAMPLE_INTERVAL_MS".to_owned(),
                    "1000".to_owned(),
                ),
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
                ("INDEXER_SAMPLE_INTERVAL_MS".to_owned(), "1000".to_owned()),
                ("DB_POOL_MAX_SIZE".to_owned(), "8".to_owned()),
            ]);
            stack
                .service(&format!("indexer{i}"), "rsky-indexer", "indexer", port, env)
                .await?;
        }

        stack.start_prometheus().await?;
        Ok(stack)
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

    /// An error when a process of the stack has exited.
    pub fn check_running(&mut self) -> Result<(), StackError> {
        for p in &mut self.processes {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(not_running(&p.name, &format!("exited ({status})"), &p.log));
            }
        }
        Ok(())
    }

    /// Stops every process with SIGTERM (the services drain and exit), newest first, killing
    /// any still running after 15 s.
    pub async fn stop(mut self) -> Vec<(String, String)> {
        let mut outcomes = Vec::new();
        while let Some(mut p) = self.processes.pop() {
            let outcome = match p.child.id() {
                Some(pid) => {
                    let _ = std::process::Command::new("kill")
                        .args(["-TERM", &pid.to_string()])
                        .status();
                    match tokio::time::timeout(Duration::from_secs(15), p.child.wait()).await {
                        Ok(Ok(status)) => status.to_string(),
                        Ok(Err(e)) => format!("wait failed: {e}"),
                        Err(_) => {
                            let _ = p.child.kill().await;
                            "killed after 15 s".to_owned()
                        }
                    }
                }
                None => "had exited".to_owned(),
            };
            outcomes.push((p.name, outcome));
        }
        outcomes
    }

    async fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        env: Vec<(String, String)>,
    ) -> Result<(), StackError> {
        let log = self.options.work_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|source| StackError::Write {
            path: log.clone(),
            source,
        })?;
        let err_file = file.try_clone().map_err(|source| StackError::Write {
            path: log.clone(),
            source,
        })?;
        let child = Command::new(program)
            .args(args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| StackError::Spawn {
                name: name.to_owned(),
                program: program.display().to_string(),
                source,
            })?;
        self.processes.push(Process {
            name: name.to_owned(),
            child,
            log,
        });
        Ok(())
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
        self.spawn(name, &program, &[], env).await?;
        self.wait_for_http(
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
        self.spawn("prometheus", Path::new("prometheus"), &args, Vec::new())
            .await?;
        self.prometheus_url = format!("http://{addr}");
        let ready = format!("{}/-/ready", self.prometheus_url);
        self.wait_for_http("prometheus", &ready, Duration::from_secs(60))
            .await
    }

    async fn wait_for_http(
        &mut self,
        name: &str,
        url: &str,
        within: Duration,
    ) -> Result<(), StackError> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            self.check_running()?;
            if let Ok(resp) = client.get(url).timeout(Duration::from_secs(2)).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(
                    self.not_ready(name, &format!("did not answer {url} within {within:?}"))
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `url` (a `listRepos` of `name`) lists at least `accounts` repositories.
    async fn wait_for_listed(
        &mut self,
        name: &str,
        url: &str,
        accounts: usize,
    ) -> Result<(), StackError> {
        let client = reqwest::Client::new();
        let within = Duration::from_secs(60);
        let deadline = Instant::now() + within;
        let mut seen = 0;
        loop {
            self.check_running()?;
            if let Ok(resp) = client.get(url).timeout(Duration::from_secs(2)).send().await {
                if let Ok(body) = resp.json::<serde_json::Value>().await {
                    seen = body["repos"].as_array().map_or(0, Vec::len);
                    if seen >= accounts {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(self.not_ready(
                    name,
                    &format!("listed {seen} of its {accounts} accounts at {url} within {within:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_for_port(&mut self, name: &str, port: u16) -> Result<(), StackError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_running()?;
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(
                    self.not_ready(name, &format!("did not listen on port {port} within 30 s"))
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn not_ready(&self, name: &str, what: &str) -> StackError {
        let log = self
            .processes
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.log.clone())
            .unwrap_or_default();
        not_running(name, what, &log)
    }
}

fn not_running(name: &str, what: &str, log: &Path) -> StackError {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    StackError::NotRunning {
        name: name.to_owned(),
        what: what.to_owned(),
        log: log.to_owned(),
        tail,
    }
}

fn packages_args() -> String {
    SERVICE_PACKAGES
        .iter()
        .map(|p| format!("-p {p}"))
        .collect::<Vec<_>>()
        .join(" ")
        + " --bins"
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> Result<u16, StackError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| StackError::Write {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })
}

/// The project's prometheus.yml with its targets replaced by the stack's (by job) and its
/// intervals set to `interval`; the rule files stay the project's (absolute paths).
pub fn local_prometheus_config(
    project_config: &Path,
    targets: &[Target],
    interval: Duration,
) -> Result<String, crate::Error> {
    let format = |message: String| crate::Error::Format {
        path: project_config.to_owned(),
        message,
    };
    let mut config: Value = serde_yaml::from_str(&crate::read(project_config)?)
        .map_err(|e| format(format!("not valid YAML: {e}")))?;
    let interval = format!("{}ms", interval.as_millis());
    config["global"]["scrape_interval"] = Value::from(interval.clone());
    config["global"]["evaluation_interval"] = Value::from(interval);
    let dir = project_config.parent().unwrap_or(Path::new("."));
    if let Some(files) = config["rule_files"].as_sequence_mut() {
        for file in files.iter_mut() {
            if let Some(relative) = file.as_str() {
                *file = Value::from(dir.join(relative).display().to_string());
            }
        }
    }
    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .ok_or_else(|| format("no scrape_configs".to_owned()))?;
    for job in jobs.iter_mut() {
        let name = job["job_name"].as_str().unwrap_or_default().to_owned();
        let mine: Vec<Value> = targets
            .iter()
            .filter(|t| t.job == name)
            .map(|t| Value::from(t.instance.clone()))
            .collect();
        let mut static_config = serde_yaml::Mapping::new();
        static_config.insert(Value::from("targets"), Value::Sequence(mine));
        job["static_configs"] = Value::Sequence(vec![Value::Mapping(static_config)]);
    }
    serde_yaml::to_string(&config).map_err(|e| format(format!("cannot write YAML: {e}")))
}

/// Creates `database` through `admin_url` when it does not exist; returns its URL.
async fn create_database(admin_url: &str, database: &str) -> Result<String, StackError> {
    let err = |message: String| StackError::Database {
        database: database.to_owned(),
        url: admin_url.to_owned(),
        message,
    };
    if !database
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(err("use letters, digits and _ only".to_owned()));
    }
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| err(format!("{e} (is PostgreSQL running?)")))?;
    let task = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
        .await
        .map_err(|e| err(e.to_string()))?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE \"{database}\""))
            .await
            .map_err(|e| err(e.to_string()))?;
    }
    drop(client);
    let _ = task.await;
    Ok(with_database(admin_url, database))
}

/// Deletes every Redis key that starts with `prefix` (streams, cursors, caches of a stack).
pub async fn clear_redis_keys(url: &str, prefix: &str) -> Result<(), StackError> {
    let err = |message: String| StackError::Redis {
        prefix: prefix.to_owned(),
        url: url.to_owned(),
        message,
    };
    if prefix.is_empty() {
        return Err(err(
            "refusing to delete every key: give the stack a key prefix".to_owned(),
        ));
    }
    let client = redis::Client::open(url).map_err(|e| err(e.to_string()))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| err(format!("{e} (is Redis running?)")))?;
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| err(e.to_string()))?;
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|e| err(e.to_string()))?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Drops `database` (used by tests that made their own).
pub async fn drop_database(admin_url: &str, database: &str) -> Result<(), StackError> {
    let err = |message: String| StackError::Database {
        database: database.to_owned(),
        url: admin_url.to_owned(),
        message,
    };
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| err(e.to_string()))?;
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .await
        .map_err(|e| err(e.to_string()))?;
    drop(client);
    let _ = task.await;
    Ok(())
}

/// `url` with its database path replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The directory of the binaries built with the current executable's profile:
/// `target/debug` for a binary in it or for a test in `target/debug/deps`.
pub fn sibling_bin_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir.to_path_buf())
    }
}

/// Builds [`SERVICE_BINARIES`] with cargo into `bin_dir`'s target directory and profile.
pub fn build_service_binaries(bin_dir: &Path) -> Result<(), StackError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(&cargo);
    command.arg("build").current_dir(crate::workspace_root());
    // With rsky-stack in the selection, features unify as in `cargo test -p rsky-stack`, so this
    // build and the test's do not rebuild each other's dependencies.
    for package in SERVICE_PACKAGES.iter().chain(&["rsky-stack"]) {
        command.args(["-p", package]);
    }
    command.arg("--bins");
    if bin_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    // A test or `cargo run` passes its package's CARGO_PKG_*/CARGO_MANIFEST_* variables down;
    // build scripts that watch them (ring's do) would rerun and rebuild half of the tree.
    for (var, _) in std::env::vars_os() {
        if let Some(name) = var.to_str() {
            let keep = name == "CARGO_HOME" || name == "CARGO_TARGET_DIR";
            if (name.starts_with("CARGO_") || name.starts_with("__CARGO")) && !keep {
                command.env_remove(name);
            }
        }
    }
    if let Some(target_dir) = bin_dir.parent() {
        command.env("CARGO_TARGET_DIR", target_dir);
    }
    let status = command.status().map_err(|source| StackError::Spawn {
        name: "cargo build".to_owned(),
        program: cargo.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(StackError::NotRunning {
            name: "cargo build".to_owned(),
            what: format!("failed ({status})"),
            log: PathBuf::new(),
            tail: "see cargo's output above".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_keeps_everything_but_the_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn the_local_prometheus_config_scrapes_the_stack_with_the_project_rules() {
        let targets = vec![
            Target {
                job: "rsky-ingester".into(),
                instance: "127.0.0.1:5001".into(),
                name: "ingester".into(),
            },
            Target {
                job: "rsky-indexer".into(),
                instance: "127.0.0.1:5002".into(),
                name: "indexer1".into(),
            },
            Target {
                job: "prometheus".into(),
                instance: "127.0.0.1:5003".into(),
                name: "prometheus".into(),
            },
        ];
        let root = crate::workspace_root();
        let text = local_prometheus_config(
            &root.join("prometheus.yml"),
            &targets,
            Duration::from_secs(1),
        )
        .unwrap();
        let config: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(config["global"]["scrape_interval"].as_str(), Some("1000ms"));
        let rules = root.join("prometheus/alerts.yml").display().to_string();
        assert_eq!(config["rule_files"][0].as_str(), Some(rules.as_str()));
        let targets_of = |job: &str| -> Vec<String> {
            let jobs = config["scrape_configs"].as_sequence().unwrap();
            let job = jobs.iter().find(|j| j["job_name"] == job).unwrap();
            job["static_configs"][0]["targets"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(targets_of("rsky-ingester"), ["127.0.0.1:5001"]);
        assert_eq!(targets_of("rsky-indexer"), ["127.0.0.1:5002"]);
        assert_eq!(targets_of("prometheus"), ["127.0.0.1:5003"]);
        assert!(targets_of("rsky-backfiller").is_empty());
    }
}
