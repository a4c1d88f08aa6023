//! Fuzz the HTTP head parsers and the Range / Content-Range / resource interpreters: never
//! panic; complete heads re-encode to something that parses back the same; prefixes of a
//! complete head ask for more; the resumable parse agrees with the whole-buffer parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/http.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_http(data));
