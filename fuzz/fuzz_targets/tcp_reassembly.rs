//! Fuzz TCP reassembly with arbitrary segment sequences.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/pcap.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_reassembly(data));
