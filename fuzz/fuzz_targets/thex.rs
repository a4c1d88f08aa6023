//! Fuzz target `thex`: the THEX DIME decoder on arbitrary bytes (see fuzz/checks/thex.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/thex.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_thex(data));
