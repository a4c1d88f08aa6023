//! Damaged captures in every way at once: random byte flips, overwritten
//! runs and cuts of the real traces go through the whole decoder
//! (reader, reassembly, sessions, descriptors, inflate) in-process. Every
//! run must finish with a summary, whatever the damage.

mod support;

use hazel_tools::trace::{trace_bytes, Options};
use rand::{Rng, SeedableRng};
use support::*;

#[test]
fn mutated_captures_always_finish() {
    let seed: u64 = rand::thread_rng().gen();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ndpi = std::fs::read(trace("ndpi-gtkg-0.6-2022.pcap")).unwrap();
    let ppa = std::fs::read(trace("ppa1e-bearshare-get-2001.pcap")).unwrap();
    // The deflate links and the UDP descriptors lie between these offsets.
    let sources: [&[u8]; 2] = [&ndpi[..ndpi.len().min(400_000)], &ppa];
    for round in 0..12 {
        let mut bytes = sources[round % 2].to_vec();
        for _ in 0..rng.gen_range(1..40) {
            let at = rng.gen_range(24..bytes.len());
            match rng.gen_range(0..3) {
                0 => bytes[at] ^= 1 << rng.gen_range(0..8),
                1 => {
                    let end = (at + rng.gen_range(1..64)).min(bytes.len());
                    rng.fill(&mut bytes[at..end]);
                }
                _ => bytes[at] = rng.gen(),
            }
        }
        if rng.gen_bool(0.3) {
            let cut = rng.gen_range(24..bytes.len());
            bytes.truncate(cut);
        }
        for json in [false, true] {
            let mut out = Vec::new();
            let mut diag = Vec::new();
            let options = Options {
                ports: Vec::new(),
                json,
            };
            trace_bytes(&bytes, &options, &mut out, &mut diag).expect("a capture with damage");
            let text = String::from_utf8(out).expect("output is UTF-8");
            let last = text.lines().last().unwrap_or("");
            if json {
                let v: serde_json::Value = serde_json::from_str(last).expect("JSON summary");
                assert_eq!(v["kind"], "summary", "round {round}");
            } else {
                assert!(last.starts_with("summary: "), "round {round}: {last}");
            }
        }
    }
}
