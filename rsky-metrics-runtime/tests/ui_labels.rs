//! Compile-time behaviour of typed labels: label types, typed families in a metric set and
//! `#[counted]` with kinds compile (and run their own assertions); every misuse is a compile error
//! at its token that states the rule and the fix.

#[test]
fn typed_labels_ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/labels/pass/*.rs");
    cases.compile_fail("tests/ui/labels/fail/*.rs");
}
