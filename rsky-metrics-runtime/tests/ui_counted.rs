//! Compile-time behaviour of `#[counted]`: every supported function shape compiles (and runs its
//! own assertions), and every misuse is a compile error that names the problem at its token.

#[test]
fn counted_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/counted/pass/*.rs");
    t.compile_fail("tests/ui/counted/fail/*.rs");
}
