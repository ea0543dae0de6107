//! Building the binaries the stack runs, and finding them.

use std::path::{Path, PathBuf};

use super::{StackError, SERVICE_PACKAGES};

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
        Err(StackError::Build { status })
    }
}

/// `-p ...` arguments that build the stack's binaries.
pub(super) fn packages_args() -> String {
    SERVICE_PACKAGES
        .iter()
        .map(|p| format!("-p {p}"))
        .collect::<Vec<_>>()
        .join(" ")
        + " --bins"
}
