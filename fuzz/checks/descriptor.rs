//! What must hold for any input to the descriptor decoders. Shared by the
//! `descriptor` fuzz target and the regression replay test in
//! protocol/tests/descriptor_fuzz_regressions.rs.

use hazel_protocol::descriptor::{
    Descriptor, DescriptorRef, ExtensionRef, ExtensionsRef, Payload, PayloadRef,
    EXTENSION_SEPARATOR,
};
use hazel_protocol::ggep::{Ggep, GgepRef, GGEP_MAGIC};
use hazel_protocol::header::{Header, PayloadType};
use hazel_protocol::huge::Urn;

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

    // The whole input as an extension area: split exactly as a walk from scratch at every item
    // would split it (the iterator remembers failed GGEP attempts to stay linear).
    let items: Vec<ExtensionRef<'_>> = ExtensionsRef::new(data).iter().collect();
    assert_eq!(items, naive_extension_items(data), "extension area split");

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

/// The extension iterator's definition, without its memory: at each item, a GGEP block if one
/// parses there and is followed by a separator or the end, else the bytes up to the next separator.
fn naive_extension_items(area: &[u8]) -> Vec<ExtensionRef<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < area.len() {
        let rest = &area[pos..];
        if rest.first() == Some(&GGEP_MAGIC) {
            if let Ok((ggep, used)) = GgepRef::parse_prefix(rest) {
                match rest.get(used) {
                    None => {
                        out.push(ExtensionRef::Ggep(ggep));
                        return out;
                    }
                    Some(&EXTENSION_SEPARATOR) => {
                        out.push(ExtensionRef::Ggep(ggep));
                        pos += used + 1;
                        if pos == area.len() {
                            // A separator ends the area: one empty item follows.
                            out.push(ExtensionRef::Text(&[]));
                            return out;
                        }
                        continue;
                    }
                    Some(_) => {}
                }
            }
        }
        let end = rest.iter().position(|&b| b == EXTENSION_SEPARATOR);
        let item = &rest[..end.unwrap_or(rest.len())];
        out.push(if Urn::is_urn(item) {
            ExtensionRef::Urn(item)
        } else if matches!(item.first(), Some(b'<') | Some(b'{')) {
            ExtensionRef::Xml(item)
        } else {
            ExtensionRef::Text(item)
        });
        match end {
            Some(e) if pos + e + 1 == area.len() => {
                out.push(ExtensionRef::Text(&[]));
                return out;
            }
            Some(e) => pos += e + 1,
            None => return out,
        }
    }
    out
}
