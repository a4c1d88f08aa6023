//! Replays the fuzz regression corpus (`fuzz/corpus/regressions/descriptor`
//! and `…/framer`) through the same checks the `descriptor` and `framer`
//! fuzz targets run, so an input that once broke a decoder stays covered
//! by `cargo test`. Inputs found by fuzzing and hand-made edge cases live
//! there side by side.

mod fuzz_corpus;
use fuzz_corpus::corpus;

use hazel_protocol::descriptor::{Descriptor, Payload};
use hazel_protocol::DecodeError;

#[path = "../../fuzz/checks/descriptor.rs"]
mod descriptor_checks;
#[path = "../../fuzz/checks/framer.rs"]
mod framer_checks;

#[test]
fn descriptor_regressions_replay() {
    let files = corpus("descriptor");
    for (name, data) in &files {
        println!("replaying descriptor/{name} ({} bytes)", data.len());
        descriptor_checks::check_descriptor(data);
    }
    println!("{} descriptor inputs replayed", files.len());
}

#[test]
fn framer_regressions_replay() {
    let files = corpus("framer");
    for (name, data) in &files {
        println!("replaying framer/{name} ({} bytes)", data.len());
        framer_checks::check_framer(data);
    }
    println!("{} framer inputs replayed", files.len());
}

fn regression(name: &str) -> Vec<u8> {
    corpus("descriptor")
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("regression input {name} missing"))
        .1
}

#[test]
fn deflate_bomb_in_ggep_is_refused() {
    let d = Descriptor::parse(&regression("pong-ggep-deflate-bomb")).expect("pong decodes");
    let Payload::Pong(pong) = d.payload else {
        panic!("not a pong")
    };
    let ipp = pong.ggep.as_ref().and_then(|g| g.get(b"IPP")).expect("IPP");
    assert!(matches!(ipp.value(), Err(DecodeError::TooLong { .. })));
}

#[test]
fn oversized_header_and_bad_ggep_are_errors() {
    assert!(matches!(
        Descriptor::parse(&regression("header-len-over-64k")),
        Err(DecodeError::TooLong { len: 65537, .. })
    ));
    assert_eq!(
        Descriptor::parse(&regression("ping-ggep-non-minimal-length")),
        Err(DecodeError::BadField("ggep length not minimal"))
    );
    let d = Descriptor::parse(&regression("query-ggep-then-stray-nul")).expect("query");
    let Payload::Query(q) = d.payload else {
        panic!("not a query")
    };
    assert!(q.stray_nul && q.ggep().is_some());
}

#[test]
fn interleaved_ggep_chains_decode_as_text_items() {
    // Every 0x1C in these areas is followed by a magic byte starting a GGEP chain that runs to
    // the end of the area without a last flag: once quadratic (seconds per descriptor).
    let d = Descriptor::parse(&regression("query-interleaved-ggep-chains")).expect("query");
    let Payload::Query(q) = d.payload else {
        panic!("not a query")
    };
    assert_eq!(q.extensions.len(), 6501);
    assert!(q.ggep().is_none());
    let d = Descriptor::parse(&regression("hit-interleaved-ggep-chains")).expect("hit");
    let Payload::QueryHit(h) = d.payload else {
        panic!("not a hit")
    };
    assert_eq!(h.results[0].extensions.len(), 3001);
    let trailer = h.trailer.as_ref().expect("trailer");
    assert_eq!(trailer.flags().ggep, Some(true));
    assert!(
        trailer.ggep().is_none(),
        "no valid block in the private data"
    );
}
