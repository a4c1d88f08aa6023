//! Fuzz the descriptor decoders (owned and zero-copy), GGEP and HUGE:
//! never panic, the two decoders agree, decoded input re-encodes exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/descriptor.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_descriptor(data));
