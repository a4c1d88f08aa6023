use super::dime::test_support::{padded, tree_uuid, Record};
use super::dime::{parse_records, MAX_DIME_LEN, TREE_TYPE, TYPE_MEDIA, TYPE_URI};
use super::*;
use crate::error::DecodeError;
use proptest::prelude::*;

fn b32(d: &TigerDigest) -> String {
    tiger_base32(d)
}

/// The published THEX vectors (the THEX draft's examples; gtk-gnutella checks the same four at
/// start-up, see its src/lib/tigertree.c).
const VECTORS: [(&str, usize, u8); 4] = [
    ("LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ", 0, 0),
    ("VK54ZIEEVTWNAUI5D5RDFIL37LX2IQNSTAXFKSA", 1, 0),
    ("L66Q4YVNAFWVS23X2HJIRA5ZJ7WXR3F26RSASFA", 1024, b'A'),
    ("PZMRYHGY6LTBEH63ZWAHDORHSYTLO4LEFUIKHWY", 1025, b'A'),
];

#[test]
fn tiger_is_the_original_tiger_not_tiger2() {
    // Tiger("") from the Tiger authors' test suite; Tiger2 pads differently.
    let digest: [u8; 24] = Tiger::digest(b"").into();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "3293ac630c13f0245f92bbb1766e16167a4e58492dde73f3");
}

#[test]
fn published_roots() {
    for (expected, len, byte) in VECTORS {
        let data = vec![byte; len];
        assert_eq!(b32(&root_of(&data)), expected, "root_of {len} bytes");
        assert_eq!(b32(&TigerTree::of(&data).root()), expected, "tree of {len}");
        let mut streaming = RootHasher::new();
        for piece in data.chunks(7) {
            streaming.update(piece);
        }
        assert_eq!(b32(&streaming.finish()), expected, "streamed {len}");
    }
    // The empty file's root is Tiger(0x00), one empty leaf.
    assert_eq!(root_of(&[]), leaf_hash(&[]));
    let direct: [u8; 24] = Tiger::digest([0u8]).into();
    assert_eq!(root_of(&[]), direct);
    // 1025 bytes: two leaves, a full block and a 1-byte one.
    let data = [b'A'; 1025];
    assert_eq!(
        root_of(&data),
        node_hash(&leaf_hash(&data[..1024]), &leaf_hash(&data[1024..]))
    );
}

#[test]
fn odd_node_moves_up_unchanged() {
    // Three leaves: root = H(H(a, b), c), c is not hashed again.
    let data = vec![7u8; 2048 + 10];
    let (a, b, c) = (
        leaf_hash(&data[..1024]),
        leaf_hash(&data[1024..2048]),
        leaf_hash(&data[2048..]),
    );
    assert_eq!(root_of(&data), node_hash(&node_hash(&a, &b), &c));
    assert_eq!(parents(&[a, b, c]), vec![node_hash(&a, &b), c]);
}

#[test]
fn geometry() {
    assert_eq!(block_count(0), 1);
    assert_eq!(block_count(1024), 1);
    assert_eq!(block_count(1025), 2);
    assert_eq!(full_depth(0), 0);
    assert_eq!(full_depth(1024), 0);
    assert_eq!(full_depth(1025), 1);
    assert_eq!(full_depth(4 * 1024), 2);
    assert_eq!(full_depth(4 * 1024 + 1), 3);
    // The captured Shareaza file: 3159 blocks, rows 1 2 4 7 13 25 50 99 198 395 790 1580 3159.
    let size = 3_234_212;
    assert_eq!(full_depth(size), 12);
    let rows: Vec<u64> = (0..=12).map(|d| row_len(size, d).unwrap()).collect();
    assert_eq!(
        rows,
        [1, 2, 4, 7, 13, 25, 50, 99, 198, 395, 790, 1580, 3159]
    );
    assert_eq!(row_len(size, 13), None);
    // Kept depth: 64 KiB units, at most 1024.
    assert_eq!(kept_depth(0), 0);
    assert_eq!(kept_depth(64 * 1024), 0);
    assert_eq!(kept_depth(64 * 1024 + 1), 1);
    assert_eq!(kept_depth(size), 6);
    assert_eq!(kept_depth(64 << 20), 10);
    assert_eq!(kept_depth(1 << 30), 10);
    assert_eq!(kept_depth(u64::MAX), 10);
    // Huge sizes do not overflow anything.
    assert_eq!(full_depth(u64::MAX), 54);
    assert_eq!(row_len(u64::MAX, 0), Some(1));
    assert_eq!(row_len(u64::MAX, 54), Some(block_count(u64::MAX)));
    assert_eq!(row_len(4 << 30, 10), Some(1024));
}

/// The reference: every leaf in memory, rows built one by one. Independent of the streaming
/// code (it shares only the two hash primitives, which the published vectors check).
fn naive_levels(data: &[u8]) -> Vec<Vec<TigerDigest>> {
    let mut row: Vec<TigerDigest> = if data.is_empty() {
        vec![leaf_hash(&[])]
    } else {
        data.chunks(1024).map(leaf_hash).collect()
    };
    let mut levels = vec![row.clone()];
    while row.len() > 1 {
        row = parents(&row);
        levels.push(row.clone());
    }
    levels.reverse();
    levels
}

fn hashed_with(policy: Policy, data: &[u8], piece: usize) -> TigerTree {
    let mut hasher = TreeHasher::with_policy(policy);
    for chunk in data.chunks(piece.max(1)) {
        hasher.update(chunk);
    }
    assert_eq!(hasher.len(), data.len() as u64);
    hasher.finish()
}

fn check_against_naive(policy: Policy, data: &[u8], piece: usize) {
    let tree = hashed_with(policy, data, piece);
    let naive = naive_levels(data);
    let depth = policy.kept_depth(data.len() as u64);
    assert_eq!(tree.depth(), depth, "len {}", data.len());
    assert_eq!(
        tree.levels(),
        &naive[..=depth as usize],
        "len {}",
        data.len()
    );
    assert_eq!(tree.file_size(), data.len() as u64);
    assert!(tree.unit_count() <= 1 << policy.max_units_depth);
    // The invariants from_levels checks hold.
    assert_eq!(
        TigerTree::from_levels(tree.file_size(), tree.levels().to_vec()).as_ref(),
        Ok(&tree)
    );
}

fn data_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 10) as u8)
        .collect()
}

#[test]
fn streaming_tree_matches_naive_tree_with_default_policy() {
    for len in [
        0,
        1,
        1023,
        1024,
        1025,
        64 * 1024 - 1,
        64 * 1024,
        64 * 1024 + 1,
        3 * 64 * 1024 + 5,
        1 << 20,
    ] {
        check_against_naive(Policy::DEFAULT, &data_of(len, 3), 4096);
    }
}

#[test]
fn kept_row_moves_up_when_full() {
    // Units of at least 2 blocks, at most 4 of them: the kept row (limit 8) moves up many
    // times on a few dozen kilobytes, through the same code as 2048 × 64 KiB does.
    let policy = Policy {
        min_unit_height: 1,
        max_units_depth: 2,
    };
    for blocks in 0..80usize {
        for extra in [0usize, 1, 1023] {
            let len =
                (blocks * 1024 + extra).saturating_sub(usize::from(blocks == 0 && extra == 1023));
            check_against_naive(policy, &data_of(len, 9), 1000);
        }
    }
}

#[test]
fn default_policy_bounds_units_on_a_large_file() {
    // 1100 units of 64 KiB would be too many: 2^10 + a bit → units of 128 KiB.
    let len = 1100 * 64 * 1024 + 17;
    let data = data_of(len, 1);
    let tree = hashed_with(Policy::DEFAULT, &data, 1 << 16);
    assert_eq!(full_depth(len as u64), 17);
    assert_eq!(tree.depth(), 10);
    assert_eq!(tree.unit(), 128 * 1024);
    assert_eq!(tree.unit_count(), 551);
    assert_eq!(tree.root(), root_of(&data));
    assert_eq!(tree.units(), &naive_levels(&data)[10][..]);
}

#[test]
fn spans_and_units() {
    let data = data_of(200 * 1024 + 100, 5);
    let tree = TigerTree::of(&data);
    assert_eq!(tree.depth(), 2);
    assert_eq!(tree.unit(), 64 * 1024);
    assert_eq!(tree.unit_count(), 4);
    assert_eq!(tree.span(0), Some(0..65536));
    assert_eq!(tree.span(3), Some(196608..204900));
    assert_eq!(tree.span(4), None);
    assert_eq!(tree.span_at(0, 0), Some(0..204900));
    assert_eq!(tree.span_at(1, 1), Some(131072..204900));
    assert_eq!(tree.unit_of(0), Some(0));
    assert_eq!(tree.unit_of(65536), Some(1));
    assert_eq!(tree.unit_of(204899), Some(3));
    assert_eq!(tree.unit_of(204900), None);
    for i in 0..4 {
        let span = tree.span(i).unwrap();
        let unit = &data[span.start as usize..span.end as usize];
        assert!(tree.verify(i, unit));
        assert!(!tree.verify(i, &unit[1..]), "a short unit is refused");
        assert!(
            !tree.verify((i + 1) % 4, unit),
            "unit {i} is not unit {}",
            (i + 1) % 4
        );
    }
    assert!(!tree.verify(4, &[]));
    // The empty file has one empty unit.
    let empty = TigerTree::of(&[]);
    assert_eq!(empty.span(0), Some(0..0));
    assert!(empty.verify(0, &[]));
    assert!(!empty.verify(0, &[0]));
    assert_eq!(empty.unit_of(0), None);
    // A file smaller than a unit: the root is the unit.
    let small = TigerTree::of(b"hello");
    assert_eq!((small.depth(), small.unit_count()), (0, 1));
    assert!(small.verify(0, b"hello"));
    assert!(!small.verify(0, b"hellO"));
}

#[test]
fn truncated_keeps_the_top_rows() {
    let tree = TigerTree::of(&data_of(300 * 1024, 2));
    assert_eq!(tree.depth(), 3);
    let top = tree.truncated(1);
    assert_eq!(top.depth(), 1);
    assert_eq!(top.root(), tree.root());
    assert_eq!(top.unit(), 256 * 1024);
    assert_eq!(tree.truncated(9), tree);
}

#[test]
fn thex_uri_values() {
    let sha1 = [0x5d; 20];
    let root = root_of(b"x");
    let uri = ThexUri::for_file(&sha1, &root);
    let value = uri.to_value();
    assert_eq!(
        value,
        format!(
            "/uri-res/N2X?urn:sha1:{};{}",
            data_encoding::BASE32.encode(&sha1),
            b32(&root)
        )
    );
    assert_eq!(ThexUri::parse(value.as_bytes()), Some(uri));
    // Shareaza's form, from the capture.
    let shareaza = b"/gnutella/thex/v1?urn:tree:tiger/:3WMUS6WM2ZC7XIPRQDKXWHHJRV4IKYC4OX4ELCA&depth=9&ed2k=1;3WMUS6WM2ZC7XIPRQDKXWHHJRV4IKYC4OX4ELCA";
    let parsed = ThexUri::parse(shareaza).unwrap();
    assert!(parsed.uri.ends_with(b"&ed2k=1"));
    assert_eq!(
        parsed.root.map(|r| b32(&r)).as_deref(),
        Some("3WMUS6WM2ZC7XIPRQDKXWHHJRV4IKYC4OX4ELCA")
    );
    // No root, or one that does not decode: the whole value is the uri.
    assert_eq!(
        ThexUri::parse(b" /a;b ").unwrap(),
        ThexUri {
            uri: b"/a;b".to_vec(),
            root: None
        }
    );
    assert_eq!(ThexUri::parse(b"http://x/y"), None);
    assert_eq!(ThexUri::parse(b"/a b;x"), None);
    assert_eq!(ThexUri::parse(b""), None);
    // Lower-case roots are read.
    let lower = format!("/t;{}", b32(&root).to_ascii_lowercase());
    assert_eq!(ThexUri::parse(lower.as_bytes()).unwrap().root, Some(root));
}

// ---- DIME ----

#[test]
fn encoded_message_layout() {
    let data = data_of(200 * 1024, 4);
    let tree = TigerTree::of(&data);
    let bytes = tree.encode_dime();
    let records = parse_records(&bytes).unwrap();
    assert_eq!(records.len(), 2);
    let (xml, digests) = (&records[0], &records[1]);
    assert!(xml.begin && !xml.end);
    assert!(!digests.begin && digests.end);
    assert_eq!(
        (xml.type_format, xml.type_name),
        (TYPE_MEDIA, &b"text/xml"[..])
    );
    assert_eq!(xml.id, b"");
    assert_eq!(
        (digests.type_format, digests.type_name),
        (TYPE_URI, TREE_TYPE.as_bytes())
    );
    let uuid = tree_uuid(&tree.root());
    assert_eq!(digests.id, uuid.as_bytes());
    assert_eq!(uuid.len(), 41);
    assert_eq!(digests.data.len(), tree.node_count() * 24);
    assert_eq!(&digests.data[..24], &tree.root());
    let text = std::str::from_utf8(xml.data).unwrap();
    assert!(
        text.contains("<file size=\"204800\" segmentsize=\"1024\"/>"),
        "{text}"
    );
    assert!(text.contains("outputsize=\"24\""), "{text}");
    assert!(
        text.contains(&format!(
            "<serializedtree depth=\"2\" type=\"{TREE_TYPE}\" uri=\"{uuid}\"/>"
        )),
        "{text}"
    );
    // The header bytes of the first record: version 1 + MB, media type, lengths big-endian.
    assert_eq!(&bytes[..4], &[0x0c, 0x10, 0, 0]);
    assert_eq!(&bytes[4..8], &[0, 0, 0, 8]);
    assert_eq!(
        u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize,
        xml.data.len()
    );
    assert_eq!(bytes.len() % 4, 0);
    assert_eq!(
        super::dime::message_len(204800, 2),
        Some(bytes.len() as u64)
    );
    assert_eq!(super::dime::message_len(204800, 9), None);
    // The largest tree Hazel keeps (1024 units) stays far below what gtk-gnutella reads.
    let largest = super::dime::message_len(u64::MAX, kept_depth(u64::MAX)).unwrap();
    assert!(largest < 50 * 1024, "{largest}");
    assert_eq!(
        TigerTree::decode_dime(&bytes, &tree.root(), 204800),
        Ok(tree)
    );
}

fn message(records: &[Record<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        r.encode(&mut out);
    }
    out
}

fn xml_for(size: u64, uri: &str) -> String {
    format!(
        "<?xml version='1.0'?><hashtree><file size='{size}' segmentsize='1024'/>\
         <digest algorithm='http://open-content.net/spec/digest/tiger' outputsize='24'/>\
         <serializedtree depth='1' type='{TREE_TYPE}' uri='{uri}'/></hashtree>"
    )
}

fn record<'a>(
    begin: bool,
    end: bool,
    type_name: &'a [u8],
    id: &'a [u8],
    data: &'a [u8],
) -> Record<'a> {
    Record {
        begin,
        end,
        type_format: if type_name == b"text/xml" {
            TYPE_MEDIA
        } else {
            TYPE_URI
        },
        options: b"",
        id,
        type_name,
        data,
    }
}

fn digests_of(tree: &TigerTree) -> Vec<u8> {
    tree.breadth_first().flatten().copied().collect()
}

#[test]
fn decoder_accepts_what_peers_send() {
    let data = data_of(100 * 1024, 8);
    let tree = TigerTree::of(&data);
    let size = data.len() as u64;
    let digests = digests_of(&tree);
    let xml = xml_for(size, "uuid:abc");
    // Single quotes, another id, records after ME ignored (Shareaza), mixed-case types.
    let bytes = message(&[
        record(true, false, b"TEXT/XML", b"", xml.as_bytes()),
        record(
            false,
            true,
            TREE_TYPE.to_uppercase().as_bytes(),
            b"UUID:ABC",
            &digests,
        ),
        record(
            false,
            true,
            b"http://edonkey2000.com/spec/md4-hashset",
            b"",
            &[1; 16],
        ),
    ]);
    assert_eq!(
        TigerTree::decode_dime(&bytes, &tree.root(), size),
        Ok(tree.clone())
    );
    // An id that matches nothing: the first tree record is taken (BearShare's mangled ids).
    let bytes = message(&[
        record(true, false, b"text/xml", b"", xml.as_bytes()),
        record(false, true, TREE_TYPE.as_bytes(), b"\"uuid:abc", &digests),
    ]);
    assert_eq!(
        TigerTree::decode_dime(&bytes, &tree.root(), size),
        Ok(tree.clone())
    );
    // The record whose id matches wins over an earlier one of the same type.
    let bogus = vec![0u8; 24];
    let bytes = message(&[
        record(true, false, b"text/xml", b"", xml.as_bytes()),
        record(false, false, TREE_TYPE.as_bytes(), b"other", &bogus),
        record(false, true, TREE_TYPE.as_bytes(), b"uuid:abc", &digests),
    ]);
    assert_eq!(
        TigerTree::decode_dime(&bytes, &tree.root(), size),
        Ok(tree.clone())
    );
    // Fewer rows than ours (the root alone, or two rows) are whole trees too.
    for depth in 0..=1 {
        let top = tree.truncated(depth);
        let d = digests_of(&top);
        let bytes = message(&[
            record(true, false, b"text/xml", b"", xml.as_bytes()),
            record(false, true, TREE_TYPE.as_bytes(), b"uuid:abc", &d),
        ]);
        assert_eq!(TigerTree::decode_dime(&bytes, &tree.root(), size), Ok(top));
    }
    // More rows than ours (down to the leaves) are kept as sent.
    let all: Vec<u8> = naive_levels(&data)
        .iter()
        .flatten()
        .flatten()
        .copied()
        .collect();
    let bytes = message(&[
        record(true, false, b"text/xml", b"", xml.as_bytes()),
        record(false, true, TREE_TYPE.as_bytes(), b"uuid:abc", &all),
    ]);
    let deep = TigerTree::decode_dime(&bytes, &tree.root(), size).unwrap();
    assert_eq!(deep.depth(), full_depth(size));
    assert_eq!(deep.unit(), 1024);
    assert!(deep.verify(99, &data[99 * 1024..]));
}

#[test]
fn decoder_rejects_bad_descriptions() {
    let data = data_of(5000, 1);
    let tree = TigerTree::of(&data);
    let digests = digests_of(&tree);
    let good = xml_for(5000, "u");
    let case = |xml: &str| {
        let bytes = message(&[
            record(true, false, b"text/xml", b"", xml.as_bytes()),
            record(false, true, TREE_TYPE.as_bytes(), b"u", &digests),
        ]);
        TigerTree::decode_dime(&bytes, &tree.root(), 5000)
    };
    assert!(case(&good).is_ok());
    assert_eq!(
        case(&xml_for(5001, "u")),
        Err(ThexError::FileSize {
            announced: 5001,
            expected: 5000
        })
    );
    for (from, to, what) in [
        ("size='5000'", "size='5e3'", "file size"),
        ("size='5000'", "size=''", "file size"),
        ("size='5000'", "size='99999999999999999999999'", "file size"),
        ("segmentsize='1024'", "segmentsize='2048'", "segmentsize"),
        ("digest/tiger", "digest/sha1", "digest algorithm"),
        ("outputsize='24'", "outputsize='20'", "digest outputsize"),
        (
            "thex/breadthfirst",
            "thex/depthfirst",
            "serializedtree type",
        ),
        ("<file ", "<files ", "file element"),
        ("<hashtree>", "<hash>", "hashtree element"),
        ("<serializedtree ", "<tree ", "serializedtree element"),
        ("<digest ", "<Digest ", "digest element"),
        ("size='5000'", "size='5000", "file size"),
        ("size='5000'", "size=5000", "file size"),
    ] {
        let xml = good.replacen(from, to, 1);
        assert_ne!(xml, good);
        assert_eq!(case(&xml), Err(ThexError::Description(what)), "{xml}");
    }
    // No description record, no tree record.
    let only_tree = message(&[record(true, true, TREE_TYPE.as_bytes(), b"u", &digests)]);
    assert_eq!(
        TigerTree::decode_dime(&only_tree, &tree.root(), 5000),
        Err(ThexError::NoDescription)
    );
    let only_xml = message(&[record(true, true, b"text/xml", b"", good.as_bytes())]);
    assert_eq!(
        TigerTree::decode_dime(&only_xml, &tree.root(), 5000),
        Err(ThexError::NoTree)
    );
}

#[test]
fn decoder_rejects_lying_trees() {
    let data = data_of(300 * 1024 + 3, 6);
    let size = data.len() as u64;
    let tree = TigerTree::of(&data);
    let digests = digests_of(&tree);
    let xml = xml_for(size, "u");
    let decode = |d: &[u8], root: &TigerDigest| {
        let bytes = message(&[
            record(true, false, b"text/xml", b"", xml.as_bytes()),
            record(false, true, TREE_TYPE.as_bytes(), b"u", d),
        ]);
        TigerTree::decode_dime(&bytes, root, size)
    };
    assert_eq!(decode(&digests, &tree.root()), Ok(tree.clone()));
    // Another root expected: the tree is of another file.
    let other = root_of(b"other");
    assert_eq!(
        decode(&digests, &other),
        Err(ThexError::WrongRoot { found: tree.root() })
    );
    // Not whole rows, not whole digests, nothing.
    assert_eq!(
        decode(&digests[..digests.len() - 24], &tree.root()),
        Err(ThexError::TreeLength)
    );
    assert_eq!(
        decode(&digests[..digests.len() - 1], &tree.root()),
        Err(ThexError::TreeLength)
    );
    assert_eq!(decode(&[], &tree.root()), Err(ThexError::TreeLength));
    let mut longer = digests.clone();
    longer.extend_from_slice(&[0; 24]);
    assert_eq!(decode(&longer, &tree.root()), Err(ThexError::TreeLength));
    // A unit replaced by another (the lie a corrupting source would tell): the row above
    // no longer matches.
    let mut swapped = digests.clone();
    let n = swapped.len();
    swapped.copy_within(n - 48..n - 24, n - 24);
    assert_eq!(
        decode(&swapped, &tree.root()),
        Err(ThexError::Inconsistent { depth: 3 })
    );
    // Every byte flipped anywhere in the digests is caught.
    for i in 0..digests.len() {
        let mut bad = digests.clone();
        bad[i] ^= 0x20;
        assert!(decode(&bad, &tree.root()).is_err(), "flip at {i}");
    }
    // A size the digests do not fit: the claimed file is 4 GiB.
    let bytes = message(&[
        record(
            true,
            false,
            b"text/xml",
            b"",
            xml_for(4 << 30, "u").as_bytes(),
        ),
        record(false, true, TREE_TYPE.as_bytes(), b"u", &digests),
    ]);
    assert_eq!(
        TigerTree::decode_dime(&bytes, &tree.root(), 4 << 30),
        Err(ThexError::TreeLength)
    );
}

#[test]
fn hostile_containers() {
    let tree = TigerTree::of(&data_of(70_000, 2));
    let good = tree.encode_dime();
    let root = tree.root();
    let size = 70_000;
    assert!(TigerTree::decode_dime(&good, &root, size).is_ok());
    // Every truncation is an error (the last record's padding included), never a panic.
    for len in 0..good.len() {
        assert!(
            TigerTree::decode_dime(&good[..len], &root, size).is_err(),
            "cut at {len}"
        );
    }
    // A data length of 4 GiB - 1 in the first record.
    let mut lying = good.clone();
    lying[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        TigerTree::decode_dime(&lying, &root, size),
        Err(ThexError::Dime(DecodeError::Truncated))
    );
    // Lying u16 lengths.
    for field in [2, 4, 6] {
        let mut lying = good.clone();
        lying[field..field + 2].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(TigerTree::decode_dime(&lying, &root, size).is_err());
    }
    // Another version, chunked records, no message-begin flag.
    for (byte, expected) in [
        (0x14, DecodeError::BadField("DIME version")),
        (0x0d, DecodeError::BadField("DIME chunked record")),
        (0x08, DecodeError::BadField("DIME message begin flag")),
    ] {
        let mut bad = good.clone();
        bad[0] = byte;
        assert_eq!(
            TigerTree::decode_dime(&bad, &root, size),
            Err(ThexError::Dime(expected))
        );
    }
    // No record ever ends the message.
    let endless = message(&vec![record(true, false, b"x", b"", b""); 20]);
    assert!(matches!(
        TigerTree::decode_dime(&endless, &root, size),
        Err(ThexError::Dime(DecodeError::TooLong { .. }))
    ));
    // Over the size cap, before anything is read.
    let mut huge = good.clone();
    huge.resize(MAX_DIME_LEN + 1, 0);
    assert_eq!(
        TigerTree::decode_dime(&huge, &root, size),
        Err(ThexError::TooLong {
            len: MAX_DIME_LEN + 1,
            max: MAX_DIME_LEN
        })
    );
    // Trailing bytes after the ME record are ignored.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"garbage");
    assert_eq!(TigerTree::decode_dime(&trailing, &root, size), Ok(tree));
    assert_eq!(padded(0), 0);
    assert_eq!(padded(5), 8);
}

fn arb_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        (0usize..300_000, any::<u8>()).prop_map(|(len, seed)| data_of(len, seed)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn split_anywhere_same_tree(data in arb_data(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let whole = TigerTree::of(&data);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.sort_unstable();
        let mut hasher = TreeHasher::new();
        let mut roots = RootHasher::new();
        let mut at = 0;
        for p in points.into_iter().chain([data.len()]) {
            hasher.update(&data[at..p]);
            roots.update(&data[at..p]);
            at = p;
        }
        let tree = hasher.finish();
        prop_assert_eq!(&tree, &whole);
        prop_assert_eq!(roots.finish(), whole.root());
        prop_assert_eq!(whole.root(), root_of(&data));
        let naive = naive_levels(&data);
        prop_assert_eq!(whole.levels(), &naive[..=kept_depth(data.len() as u64) as usize]);
    }

    #[test]
    fn verify_accepts_true_units_and_rejects_any_flip(data in arb_data(), flip in any::<prop::sample::Index>(), bit in 0u8..8, piece in 1usize..5000) {
        let tree = TigerTree::of(&data);
        for i in 0..tree.unit_count() {
            let span = tree.span(i).unwrap();
            let unit = &data[span.start as usize..span.end as usize];
            prop_assert!(tree.verify(i, unit));
            let mut node = tree.node_hasher(i).unwrap();
            prop_assert_eq!(node.expected_len(), unit.len() as u64);
            for chunk in unit.chunks(piece) {
                node.update(chunk);
            }
            prop_assert!(node.finish());
        }
        if !data.is_empty() {
            let at = flip.index(data.len());
            let mut bad = data.clone();
            bad[at] ^= 1 << bit;
            let i = tree.unit_of(at as u64).unwrap();
            let span = tree.span(i).unwrap();
            prop_assert!(!tree.verify(i, &bad[span.start as usize..span.end as usize]));
            // Every other unit is still good: the corruption is pinned to its unit.
            for j in (0..tree.unit_count()).filter(|&j| j != i) {
                let span = tree.span(j).unwrap();
                prop_assert!(tree.verify(j, &bad[span.start as usize..span.end as usize]));
            }
        }
    }

    #[test]
    fn encode_decode_round_trip(data in arb_data(), depth in 0u32..12) {
        let tree = TigerTree::of(&data).truncated(depth);
        let bytes = tree.encode_dime();
        prop_assert_eq!(
            super::dime::message_len(data.len() as u64, tree.depth()),
            Some(bytes.len() as u64)
        );
        prop_assert_eq!(TigerTree::decode_dime(&bytes, &tree.root(), data.len() as u64), Ok(tree.clone()));
        // The wrong size or the wrong root is never accepted.
        prop_assert!(TigerTree::decode_dime(&bytes, &tree.root(), data.len() as u64 + 1).is_err());
        let mut other = tree.root();
        other[0] ^= 1;
        prop_assert!(TigerTree::decode_dime(&bytes, &other, data.len() as u64).is_err());
    }

    #[test]
    fn decoder_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..600), size in any::<u64>(), root in any::<[u8; 24]>()) {
        let _ = TigerTree::decode_dime(&bytes, &root, size);
        let _ = parse_records(&bytes);
        let _ = TigerTree::from_breadth_first(size, &root, &bytes);
        let _ = ThexUri::parse(&bytes);
    }

    #[test]
    fn mutated_messages_never_decode_to_another_tree(data in proptest::collection::vec(any::<u8>(), 0..200_000), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let tree = TigerTree::of(&data);
        let mut bytes = tree.encode_dime();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        // Whatever the change, the result is an error or the very same tree (a change in
        // padding or in the XML's ignored parts).
        if let Ok(back) = TigerTree::decode_dime(&bytes, &tree.root(), data.len() as u64) {
            prop_assert_eq!(back, tree);
        }
    }
}
