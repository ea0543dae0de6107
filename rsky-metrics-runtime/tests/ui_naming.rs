//! Compile-time naming rules of `#[derive(Metrics)]`: each bad declaration in `ui/naming/fail`
//! fails with the error in its `.stderr`; each declaration in `ui/naming/pass` compiles and runs
//! (including every metric name of the three services).

#[test]
fn naming_rules_are_compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/naming/pass/*.rs");
    cases.compile_fail("tests/ui/naming/fail/*.rs");
}
