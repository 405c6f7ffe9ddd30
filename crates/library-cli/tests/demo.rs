//! The demo of `cargo xtask demo`, run end to end: the same code (included
//! from xtask), building and starting `library-testserver` as a process of
//! its own and driving `scs-library` against it.

#[path = "../../../xtask/src/demo.rs"]
#[allow(dead_code)]
mod demo;

use std::path::Path;

#[test]
fn demo_runs_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("workspace root");
    if let Err(e) = demo::run(&root) {
        panic!("the demo failed: {e:#}");
    }
}
