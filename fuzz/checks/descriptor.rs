//! What must hold for any input to the descriptor decoders. Shared by the
//! `descriptor` fuzz target and the regression replay test in
//! protocol/tests/descriptor_fuzz_regressions.rs.

use hazel_protocol::descriptor::{Descriptor, DescriptorRef, Payload, PayloadRef};
use hazel_protocol::ggep::Ggep;
use hazel_protocol::header::{Header, PayloadType};

/// Decodes `data` as a whole descriptor, and (first byte = type) as a bare
/// payload and a GGEP block: never panics, the zero-copy view and the owned
/// decoder agree, and whatever decodes re-encodes to the same bytes.
pub fn check_descriptor(data: &[u8]) {
    let owned = Descriptor::parse(data);
    let view = DescriptorRef::parse(data);
    assert_eq!(owned, view.map(DescriptorRef::into_owned));
    if let Ok(d) = &owned {
        assert_eq!(d.to_bytes(), data, "decoded descriptor re-encodes exactly");
        assert_eq!(d.encoded_len(), data.len());
        assert_eq!(Header::parse(data).expect("header decoded"), d.header());
        visit_ggep(&d.payload);
    }

    if let Some((&ty, body)) = data.split_first() {
        let ty = PayloadType::from_u8(ty);
        let owned = Payload::parse(ty, body);
        let view = PayloadRef::parse(ty, body).map(PayloadRef::into_owned);
        assert_eq!(owned, view);
        if let Ok(p) = &owned {
            let mut out = Vec::new();
            p.encode(&mut out);
            assert_eq!(out, body, "decoded payload re-encodes exactly");
            assert_eq!(p.encoded_len(), body.len());
            visit_ggep(p);
        }
    }

    if let Ok(g) = Ggep::parse(data) {
        let mut out = Vec::new();
        g.encode(&mut out);
        assert_eq!(out, data, "decoded GGEP re-encodes exactly");
        for e in &g.extensions {
            // COBS / deflate undone on request: a value or an error.
            let _ = e.value();
        }
    }
}

fn visit_ggep(p: &Payload) {
    let blocks: Vec<&Ggep> = match p {
        Payload::Ping(x) => x.ggep.iter().collect(),
        Payload::Pong(x) => x.ggep.iter().collect(),
        Payload::Push(x) => x.ggep.iter().collect(),
        Payload::Query(q) => q.ggep().into_iter().collect(),
        Payload::QueryHit(h) => {
            for r in &h.results {
                let _ = r.sha1();
            }
            if let Some(t) = &h.trailer {
                let _ = t.flags();
                let _ = t.ggep();
            }
            h.results.iter().filter_map(|r| r.ggep()).collect()
        }
        Payload::Bye(_) | Payload::Unknown { .. } => Vec::new(),
    };
    for g in blocks {
        for e in &g.extensions {
            let _ = e.value();
        }
    }
}
