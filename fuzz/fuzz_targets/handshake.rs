//! Fuzz the incremental handshake and GIV parsers: never panic; a complete block consumes no
//! more than it was given, re-encodes to something that parses back to the same message, every
//! prefix of a complete block asks for more instead of failing, and the resumable parse fed in
//! pieces agrees with the whole-buffer parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/handshake.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_handshake(data));
