//! One Gnutella descriptor → a readable line and JSON fields: header, the
//! decoded payload, GGEP extensions (COBS / deflate undone), HUGE urns, the
//! QueryHit trailer's vendor and flags; unknown payload types raw in hex.

use hazel_protocol::descriptor::{Descriptor, Extension, Payload, QhdFlags};
use hazel_protocol::ggep::Ggep;
use hazel_protocol::header::{Header, HEADER_LEN};
use serde_json::{json, Map, Value};

use super::record::{hex, quoted, shown, text_or_hex};

/// Hit names shown on one line before "+N more".
const HITS_ON_LINE: usize = 3;
/// Bytes of an unknown payload shown on one line.
const RAW_ON_LINE: usize = 48;

/// The name of a payload type, including the common ones Hazel keeps opaque.
pub fn type_name(code: u8) -> String {
    match code {
        0x00 => "Ping".into(),
        0x01 => "Pong".into(),
        0x02 => "Bye".into(),
        0x30 => "QRP".into(),
        0x31 => "Vendor".into(),
        0x32 => "VendorStd".into(),
        0x40 => "Push".into(),
        0x44 => "Mojito".into(),
        0x80 => "Query".into(),
        0x81 => "QueryHit".into(),
        0xcd => "HSEP".into(),
        other => format!("0x{other:02x}"),
    }
}

/// Describes one whole descriptor (header + payload). Returns the line text,
/// the JSON fields, and the type name for the summary. A payload that does
/// not decode still gives a record, with an `error` field and the raw bytes.
pub fn descriptor(bytes: &[u8]) -> (String, Map<String, Value>, String) {
    let mut f = Map::new();
    let header = match Header::parse(bytes) {
        Ok(h) => h,
        Err(e) => {
            f.insert("error".into(), format!("header: {e}").into());
            f.insert("raw_hex".into(), hex(bytes).into());
            return (
                format!("descriptor with a bad header ({e})"),
                f,
                "malformed".into(),
            );
        }
    };
    let code = header.payload_type.to_u8();
    let name = type_name(code);
    f.insert("id".into(), hex(&header.id.0).into());
    f.insert("type".into(), code.into());
    f.insert("type_name".into(), name.clone().into());
    f.insert("ttl".into(), header.ttl.into());
    f.insert("hops".into(), header.hops.into());
    f.insert("length".into(), header.payload_len.into());
    let id = hex(&header.id.0);
    let head = format!(
        "{name} ttl={} hops={} id={}…{} len={}",
        header.ttl,
        header.hops,
        &id[..8],
        &id[24..],
        header.payload_len
    );
    let payload = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    let d = match Descriptor::parse(bytes) {
        Ok(d) => d,
        Err(e) => {
            f.insert("error".into(), e.to_string().into());
            f.insert("payload_hex".into(), hex(payload).into());
            return (
                format!("{head} MALFORMED ({e}) {}", short_hex(payload)),
                f,
                name,
            );
        }
    };
    let detail = match &d.payload {
        Payload::Ping(p) => {
            f.insert("ggep".into(), ggep_json(p.ggep.as_ref()));
            ggep_text(p.ggep.as_ref())
        }
        Payload::Pong(p) => {
            f.insert(
                "pong".into(),
                json!({"ip": p.ip.to_string(), "port": p.port, "files": p.files, "kbytes": p.kbytes}),
            );
            f.insert("ggep".into(), ggep_json(p.ggep.as_ref()));
            format!(
                "{}:{} files={} kbytes={}{}",
                p.ip,
                p.port,
                p.files,
                p.kbytes,
                ggep_text(p.ggep.as_ref())
            )
        }
        Payload::Query(q) => {
            let mut o = Map::new();
            let speed = match q.speed.flags_word() {
                Some(w) => {
                    o.insert("flags".into(), format!("0x{w:04x}").into());
                    o.insert("firewalled".into(), q.speed.firewalled().into());
                    o.insert("wants_xml".into(), q.speed.wants_xml().into());
                    format!(
                        "flags=0x{w:04x}{}{}",
                        if q.speed.firewalled() {
                            " firewalled"
                        } else {
                            ""
                        },
                        if q.speed.wants_xml() { " xml" } else { "" }
                    )
                }
                None => {
                    let s = q.speed.min_speed_value().unwrap_or(0);
                    o.insert("min_speed".into(), s.into());
                    format!("min_speed={s}")
                }
            };
            o.insert("search".into(), String::from_utf8_lossy(&q.search).into());
            o.insert("search_hex".into(), hex(&q.search).into());
            o.insert("extensions".into(), extensions_json(&q.extensions));
            o.insert("stray_nul".into(), q.stray_nul.into());
            f.insert("query".into(), Value::Object(o));
            format!(
                "{} {speed}{}",
                quoted(&q.search, 80),
                extensions_text(&q.extensions)
            )
        }
        Payload::QueryHit(qh) => {
            let hits: Vec<Value> = qh
                .results
                .iter()
                .map(|r| {
                    json!({
                        "index": r.index,
                        "size": r.size,
                        "name": String::from_utf8_lossy(&r.name),
                        "name_hex": hex(&r.name),
                        "extensions": extensions_json(&r.extensions),
                    })
                })
                .collect();
            let mut o = Map::new();
            o.insert("ip".into(), qh.ip.to_string().into());
            o.insert("port".into(), qh.port.into());
            o.insert("speed".into(), qh.speed.into());
            o.insert("count".into(), qh.results.len().into());
            o.insert("hits".into(), Value::Array(hits));
            o.insert("servent_id".into(), qh.servent_id.to_string().into());
            let mut trailer_text = String::new();
            if let Some(t) = &qh.trailer {
                let flags = t.flags();
                let private_ggep = t.ggep();
                o.insert(
                    "trailer".into(),
                    json!({
                        "vendor": String::from_utf8_lossy(&t.vendor),
                        "open_data_hex": hex(&t.open_data),
                        "flags": flags_json(&flags),
                        "private_hex": hex(&t.private_data),
                        "private_ggep": ggep_json(private_ggep.as_ref()),
                    }),
                );
                trailer_text = format!(
                    " vendor={} {}{}",
                    text_or_hex(&t.vendor),
                    flags_text(&flags),
                    ggep_text(private_ggep.as_ref())
                );
            }
            f.insert("queryhit".into(), Value::Object(o));
            let mut names: Vec<String> = qh
                .results
                .iter()
                .take(HITS_ON_LINE)
                .map(|r| {
                    let urn = r.extensions.iter().find_map(|e| match e {
                        Extension::Urn(u) => Some(shown(&u.to_string(), 120)),
                        _ => None,
                    });
                    match urn {
                        Some(u) => format!("{} ({} B, {u})", quoted(&r.name, 60), r.size),
                        None => format!("{} ({} B)", quoted(&r.name, 60), r.size),
                    }
                })
                .collect();
            if qh.results.len() > HITS_ON_LINE {
                names.push(format!("+{} more", qh.results.len() - HITS_ON_LINE));
            }
            format!(
                "{} hits from {}:{} speed={}{} servent={}: {}",
                qh.results.len(),
                qh.ip,
                qh.port,
                qh.speed,
                trailer_text,
                qh.servent_id,
                names.join(", ")
            )
        }
        Payload::Push(p) => {
            f.insert(
                "push".into(),
                json!({"servent_id": p.servent_id.to_string(), "index": p.file_index,
                       "ip": p.ip.to_string(), "port": p.port}),
            );
            f.insert("ggep".into(), ggep_json(p.ggep.as_ref()));
            format!(
                "servent={} index={} to {}:{}{}",
                p.servent_id,
                p.file_index,
                p.ip,
                p.port,
                ggep_text(p.ggep.as_ref())
            )
        }
        Payload::Bye(b) => {
            f.insert(
                "bye".into(),
                json!({"code": b.code, "message": String::from_utf8_lossy(&b.message)}),
            );
            format!("{} {}", b.code, quoted(&b.message, 120))
        }
        Payload::Unknown { bytes, .. } => {
            f.insert("payload_hex".into(), hex(bytes).into());
            match code {
                // Vendor messages: vendor code, selector and version lead the payload.
                0x31 | 0x32 if bytes.len() >= 8 => {
                    let vendor = text_or_hex(&bytes[..4]);
                    let selector = u16::from_le_bytes([bytes[4], bytes[5]]);
                    let version = u16::from_le_bytes([bytes[6], bytes[7]]);
                    f.insert(
                        "vendor".into(),
                        json!({"vendor": vendor, "selector": selector, "version": version}),
                    );
                    format!("{vendor}/{selector} v{version} {}", short_hex(&bytes[8..]))
                }
                _ => short_hex(bytes),
            }
        }
    };
    let text = if detail.is_empty() {
        head
    } else if detail.starts_with(' ') {
        format!("{head}{detail}")
    } else {
        format!("{head} {detail}")
    };
    (text, f, name)
}

fn short_hex(bytes: &[u8]) -> String {
    if bytes.len() > RAW_ON_LINE {
        format!(
            "raw={}… ({} bytes)",
            hex(&bytes[..RAW_ON_LINE]),
            bytes.len()
        )
    } else {
        format!("raw={}", hex(bytes))
    }
}

fn ggep_json(g: Option<&Ggep>) -> Value {
    let Some(g) = g else {
        return Value::Array(Vec::new());
    };
    Value::Array(
        g.extensions
            .iter()
            .map(|e| {
                let mut o = Map::new();
                o.insert("id".into(), e.id.to_string().into());
                o.insert("cobs".into(), e.cobs.into());
                o.insert("deflate".into(), e.deflate.into());
                o.insert("wire_len".into(), e.data.len().into());
                match e.value() {
                    Ok(v) => {
                        o.insert("value_hex".into(), hex(&v).into());
                        if !v.is_empty() && v.iter().all(|b| (0x20..0x7f).contains(b)) {
                            o.insert("value_text".into(), String::from_utf8_lossy(&v).into());
                        }
                    }
                    Err(err) => {
                        o.insert("error".into(), err.to_string().into());
                        o.insert("data_hex".into(), hex(&e.data).into());
                    }
                }
                Value::Object(o)
            })
            .collect(),
    )
}

fn ggep_text(g: Option<&Ggep>) -> String {
    let Some(g) = g else {
        return String::new();
    };
    let items: Vec<String> = g
        .extensions
        .iter()
        .map(|e| {
            let mut item = e.id.to_string();
            if e.deflate {
                item.push_str("(z)");
            }
            if e.cobs {
                item.push_str("(cobs)");
            }
            match e.value() {
                Ok(v) if v.is_empty() => {}
                Ok(v) => {
                    let shown = text_or_hex(&v[..v.len().min(24)]);
                    item.push('=');
                    item.push_str(&shown);
                    if v.len() > 24 {
                        item.push('…');
                    }
                }
                Err(err) => item.push_str(&format!("=<{err}>")),
            }
            item
        })
        .collect();
    format!(" GGEP[{}]", items.join(" "))
}

fn extensions_json(items: &[Extension]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|e| match e {
                Extension::Urn(u) => json!({"urn": u.to_string()}),
                Extension::Xml(x) => json!({"xml": String::from_utf8_lossy(x)}),
                Extension::Text(t) => json!({"text": String::from_utf8_lossy(t), "hex": hex(t)}),
                Extension::Ggep(g) => json!({"ggep": ggep_json(Some(g))}),
            })
            .collect(),
    )
}

fn extensions_text(items: &[Extension]) -> String {
    let mut s = String::new();
    for e in items {
        match e {
            Extension::Urn(u) => s.push_str(&format!(" {}", shown(&u.to_string(), 120))),
            Extension::Xml(x) => s.push_str(&format!(" xml({} bytes)", x.len())),
            Extension::Text(t) if t.is_empty() => {}
            Extension::Text(t) => s.push_str(&format!(" text={}", quoted(t, 40))),
            Extension::Ggep(g) => s.push_str(&ggep_text(Some(g))),
        }
    }
    s
}

fn flags_json(f: &QhdFlags) -> Value {
    json!({"push": f.push, "busy": f.busy, "have_uploaded": f.have_uploaded,
           "upload_speed": f.upload_speed, "ggep": f.ggep})
}

fn flags_text(f: &QhdFlags) -> String {
    let mut parts = Vec::new();
    for (name, v) in [
        ("push", f.push),
        ("busy", f.busy),
        ("uploaded", f.have_uploaded),
        ("measured", f.upload_speed),
        ("ggep", f.ggep),
    ] {
        match v {
            Some(true) => parts.push(name.to_string()),
            Some(false) => parts.push(format!("!{name}")),
            None => {}
        }
    }
    format!("flags[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazel_protocol::descriptor::{Push, ServentId};
    use hazel_protocol::header::DescriptorId;
    use std::net::Ipv4Addr;

    fn header(payload_type: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0xab; 16];
        b.extend_from_slice(&[payload_type, 3, 4]);
        b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn push_line_and_fields() {
        let bytes = Descriptor {
            id: DescriptorId::modern([7; 16]),
            ttl: 5,
            hops: 2,
            payload: Payload::Push(Push {
                servent_id: ServentId([0x11; 16]),
                file_index: 42,
                ip: Ipv4Addr::new(192, 0, 2, 9),
                port: 6346,
                ggep: None,
            }),
        }
        .to_bytes();
        let (text, f, name) = descriptor(&bytes);
        assert_eq!(name, "Push");
        assert!(text.starts_with("Push ttl=5 hops=2 id=07070707…"), "{text}");
        assert!(
            text.ends_with("servent=11111111111111111111111111111111 index=42 to 192.0.2.9:6346"),
            "{text}"
        );
        assert_eq!(f["push"]["port"], 6346);
        assert_eq!(f["length"], 26);
    }

    #[test]
    fn malformed_and_unknown_payloads_are_still_records() {
        // A Pong must be at least 14 bytes.
        let (text, f, name) = descriptor(&header(0x01, &[1, 2, 3]));
        assert_eq!(name, "Pong");
        assert!(text.contains("MALFORMED"), "{text}");
        assert!(f.contains_key("error"));
        assert_eq!(f["payload_hex"], "010203");
        // A vendor message: vendor, selector and version shown.
        let (text, f, name) = descriptor(&header(0x31, b"GTKG\x09\x00\x01\x00xyz"));
        assert_eq!(name, "Vendor");
        assert!(text.contains("GTKG/9 v1 raw=78797a"), "{text}");
        assert_eq!(f["vendor"]["selector"], 9);
        // An unknown type, raw.
        let (text, _, name) = descriptor(&header(0x99, &[0xde, 0xad]));
        assert_eq!(name, "0x99");
        assert!(text.ends_with("raw=dead"), "{text}");
        // Not even a header.
        let (_, f, name) = descriptor(&[1, 2, 3]);
        assert_eq!(name, "malformed");
        assert!(f.contains_key("error"));
    }
}
