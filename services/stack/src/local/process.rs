//! Process supervision: each process of the stack with its log file; whether it is still
//! running; a graceful stop (SIGTERM, then a kill after 15 s).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::StackError;

/// One process of the stack.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

/// The processes of a stack, newest last.
pub(super) struct Supervisor {
    processes: Vec<Process>,
    work_dir: PathBuf,
}

impl Supervisor {
    /// No processes yet; logs go to `work_dir/{name}.log`.
    pub fn new(work_dir: PathBuf) -> Self {
        Supervisor {
            processes: Vec::new(),
            work_dir,
        }
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
    pub async fn stop(&mut self) -> Vec<(String, String)> {
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

    pub async fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        env: Vec<(String, String)>,
    ) -> Result<(), StackError> {
        let log = self.work_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|source| StackError::Log {
            path: log.clone(),
            source,
        })?;
        let err_file = file.try_clone().map_err(|source| StackError::Log {
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

    pub fn not_ready(&self, name: &str, what: &str) -> StackError {
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
