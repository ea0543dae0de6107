//! Readiness probes: a process is ready when its HTTP endpoint answers 2xx, its port accepts
//! connections, or (the test PDS) its `listRepos` lists every account. Each probe fails as soon
//! as the process exits, with the end of its log.

use std::time::{Duration, Instant};

use super::process::Supervisor;
use super::StackError;

impl Supervisor {
    pub async fn wait_for_http(
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
    pub async fn wait_for_listed(
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

    pub async fn wait_for_port(&mut self, name: &str, port: u16) -> Result<(), StackError> {
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
}
