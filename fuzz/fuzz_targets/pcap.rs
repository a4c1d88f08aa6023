//! Fuzz the capture reader (pcap/pcapng, frame headers, reassembly).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/pcap.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_capture(data));
