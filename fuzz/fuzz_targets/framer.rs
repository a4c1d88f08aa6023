//! Fuzz the framer, plain and with the zlib layer: never panic, frames are
//! the stream's prefix in order, buffering stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/framer.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_framer(data));
