//! `testing::promtool_check` without a promtool: a panic that says how to install it, never a
//! finding (which would let "promtool rejects this" tests pass without promtool).
//!
//! Its own test binary, because it points `PROMTOOL` at a path that does not exist.

use rsky_metrics_runtime::testing;

#[test]
fn a_missing_promtool_panics_saying_how_to_install_it() {
    std::env::set_var("PROMTOOL", "/nonexistent/promtool");
    let panic = std::panic::catch_unwind(|| testing::promtool_check("# TYPE x gauge\nx 1\n"))
        .expect_err("promtool_check returned although promtool is missing");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("/nonexistent/promtool")
            && message.contains("promtool must be installed")
            && message.contains("Debian's `prometheus` package"),
        "{message}"
    );
}
