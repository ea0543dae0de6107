//! `catalog`: prints METRICS.md, the catalog of every metric of every service.
//!
//! ```text
//! cargo run -p rsky-stack --bin catalog > METRICS.md
//! ```

use std::io::Write;
use std::process::ExitCode;

use rsky_stack::catalog::{render_markdown, server_families, services};

fn main() -> ExitCode {
    let server = match server_families() {
        Ok(server) => server,
        Err(err) => {
            eprintln!("catalog: cannot read the /metrics server's families: {err}");
            return ExitCode::FAILURE;
        }
    };
    let text = render_markdown(&services(), &server);
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("catalog: cannot write to stdout: {err}");
            ExitCode::FAILURE
        }
    }
}
