//! Query Routing Protocol (payload type 0x30): a leaf tells its ultrapeer
//! which keywords its shares contain, so the ultrapeer forwards it only the
//! Queries it could answer (gtk-gnutella forwards none to a leaf without a
//! table).
//!
//! Two messages: RESET (variant 0: table length, infinity) starts a new
//! table with every slot empty; PATCH (variant 1: sequence number and size,
//! compressor, entry bits, data) carries one piece of a patch. The pieces of
//! one sequence, concatenated, are one (possibly zlib-compressed) array of
//! signed entries, one per slot, applied to the previous table. A slot is
//! "present" when its value is below infinity; with 1-bit entries (what
//! gtk-gnutella's leaves send) a set bit flips the slot.
//!
//! Keywords reach slots through the QRP hash: lower-case the bytes, fold
//! them four at a time little-endian with XOR, multiply by 0x4F1BBCDC and
//! keep the top `bits` bits of the 32-bit product.

use crate::error::{DecodeError, Result};
use std::io::{Read, Write};

/// Payload type of every QRP message.
pub const PAYLOAD_TYPE: u8 = 0x30;
/// Largest table accepted from a peer (2^21 slots: 1 MiB at 4 bits).
pub const MAX_TABLE_SLOTS: u32 = 1 << 21;
/// Largest PATCH data piece we put in one message.
pub const MAX_PATCH_PIECE: usize = 4096;
/// Table size Hazel sends (as gtk-gnutella's leaves do).
pub const DEFAULT_TABLE_SLOTS: u32 = 16384;
/// Infinity Hazel sends (as gtk-gnutella's leaves do): present = 1 hop.
pub const DEFAULT_INFINITY: u8 = 2;

/// Compressor byte of a PATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    None,
    Zlib,
}

/// One QRP message (the payload of a 0x30 descriptor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrpMessage {
    /// Start a new table of `table_length` empty slots.
    Reset { table_length: u32, infinity: u8 },
    /// Piece `seq_no` (1-based) of `seq_size` pieces of one patch.
    Patch {
        seq_no: u8,
        seq_size: u8,
        compressor: Compressor,
        entry_bits: u8,
        data: Vec<u8>,
    },
}

impl QrpMessage {
    /// Decodes a 0x30 payload. Total: any bytes give a message or an error.
    pub fn decode(payload: &[u8]) -> Result<QrpMessage> {
        let (&variant, rest) = payload.split_first().ok_or(DecodeError::Truncated)?;
        match variant {
            0 => {
                let fixed: [u8; 5] = rest
                    .get(..5)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(DecodeError::Truncated)?;
                if rest.len() > 5 {
                    return Err(DecodeError::TrailingBytes);
                }
                let [a, b, c, d, infinity] = fixed;
                let table_length = u32::from_le_bytes([a, b, c, d]);
                if infinity == 0 {
                    return Err(DecodeError::BadField("qrp infinity"));
                }
                Ok(QrpMessage::Reset {
                    table_length,
                    infinity,
                })
            }
            1 => {
                let [seq_no, seq_size, compressor, entry_bits]: [u8; 4] = rest
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(DecodeError::Truncated)?;
                if seq_no == 0 || seq_size == 0 || seq_no > seq_size {
                    return Err(DecodeError::BadField("qrp patch sequence"));
                }
                let compressor = match compressor {
                    0 => Compressor::None,
                    1 => Compressor::Zlib,
                    _ => return Err(DecodeError::BadField("qrp compressor")),
                };
                if !matches!(entry_bits, 1 | 2 | 4 | 8) {
                    return Err(DecodeError::BadField("qrp entry bits"));
                }
                Ok(QrpMessage::Patch {
                    seq_no,
                    seq_size,
                    compressor,
                    entry_bits,
                    data: rest.get(4..).unwrap_or_default().to_vec(),
                })
            }
            _ => Err(DecodeError::BadField("qrp variant")),
        }
    }

    /// The payload bytes; `decode(encode(m)) == m`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            QrpMessage::Reset {
                table_length,
                infinity,
            } => {
                let mut out = vec![0];
                out.extend_from_slice(&table_length.to_le_bytes());
                out.push(*infinity);
                out
            }
            QrpMessage::Patch {
                seq_no,
                seq_size,
                compressor,
                entry_bits,
                data,
            } => {
                let c = match compressor {
                    Compressor::None => 0,
                    Compressor::Zlib => 1,
                };
                let mut out = vec![1, *seq_no, *seq_size, c, *entry_bits];
                out.extend_from_slice(data);
                out
            }
        }
    }
}

/// The QRP hash of `word` into a table of `2^bits` slots (`bits` in 1..=32).
/// ASCII letters are lower-cased first, as every servent does.
pub fn qrp_hash(word: &[u8], bits: u32) -> u32 {
    let mut folded: u32 = 0;
    for (i, &b) in word.iter().enumerate() {
        let shift = (i % 4) * 8;
        folded ^= u32::from(b.to_ascii_lowercase()) << shift;
    }
    let product = folded.wrapping_mul(0x4F1B_BCDC);
    let bits = bits.clamp(1, 32);
    if bits == 32 {
        product
    } else {
        product >> (32 - bits)
    }
}

/// A leaf's query route table: one presence flag per slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRouteTable {
    present: Vec<bool>,
    infinity: u8,
}

impl QueryRouteTable {
    /// An empty table (what a RESET starts). `slots` must be a power of two
    /// no larger than [`MAX_TABLE_SLOTS`]; `infinity` at least 1.
    pub fn new(slots: u32, infinity: u8) -> Result<QueryRouteTable> {
        if !slots.is_power_of_two() {
            return Err(DecodeError::BadField("qrp table length"));
        }
        if slots > MAX_TABLE_SLOTS {
            return Err(DecodeError::TooLong {
                len: slots as usize,
                max: MAX_TABLE_SLOTS as usize,
            });
        }
        if infinity == 0 {
            return Err(DecodeError::BadField("qrp infinity"));
        }
        Ok(QueryRouteTable {
            present: vec![false; slots as usize],
            infinity,
        })
    }

    /// An empty table of [`DEFAULT_TABLE_SLOTS`] slots with
    /// [`DEFAULT_INFINITY`], what Hazel sends.
    pub fn leaf_default() -> QueryRouteTable {
        QueryRouteTable {
            present: vec![false; DEFAULT_TABLE_SLOTS as usize],
            infinity: DEFAULT_INFINITY,
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> u32 {
        self.present.len() as u32
    }

    /// The infinity this table is sent with.
    pub fn infinity(&self) -> u8 {
        self.infinity
    }

    fn bits(&self) -> u32 {
        self.slots().trailing_zeros()
    }

    /// Marks `word` (already folded to lower case) present.
    pub fn add_word(&mut self, word: &str) {
        let slot = qrp_hash(word.as_bytes(), self.bits()) as usize;
        if let Some(p) = self.present.get_mut(slot) {
            *p = true;
        }
    }

    /// True when `word` hashes to a present slot (an ultrapeer would route a
    /// Query with this word to us).
    pub fn contains_word(&self, word: &str) -> bool {
        let slot = qrp_hash(word.as_bytes(), self.bits()) as usize;
        self.present.get(slot).copied().unwrap_or(false)
    }

    /// How many slots are present.
    pub fn present_count(&self) -> usize {
        self.present.iter().filter(|&&p| p).count()
    }

    /// The messages that bring a peer from `previous` (what it already has;
    /// `None` = nothing yet, so a RESET first) to this table: zlib-compressed
    /// 4-bit deltas split into PATCH pieces of at most [`MAX_PATCH_PIECE`]
    /// bytes. Empty when nothing changed.
    pub fn patch_from(&self, previous: Option<&QueryRouteTable>) -> Vec<QrpMessage> {
        let mut out = Vec::new();
        let empty;
        let base = match previous {
            Some(p) if p.slots() == self.slots() && p.infinity == self.infinity => p,
            _ => {
                out.push(QrpMessage::Reset {
                    table_length: self.slots(),
                    infinity: self.infinity,
                });
                empty = QueryRouteTable {
                    present: vec![false; self.present.len()],
                    infinity: self.infinity,
                };
                &empty
            }
        };
        // After a reset a patch always follows, even an all-zero one: gtk
        // uses a table only once a patch has completed.
        if out.is_empty() && base.present == self.present {
            return out;
        }
        // Present = 1 hop, absent = infinity: the delta is ±(infinity - 1).
        let step = i8::try_from(self.infinity.saturating_sub(1).min(7)).unwrap_or(7);
        let mut raw = Vec::with_capacity(self.present.len() / 2);
        for pair in self.present.chunks(2).zip(base.present.chunks(2)) {
            let (new, old) = pair;
            let mut byte = 0u8;
            for (k, (&n, &o)) in new.iter().zip(old.iter()).enumerate() {
                let delta: i8 = match (o, n) {
                    (false, true) => -step,
                    (true, false) => step,
                    _ => 0,
                };
                let nibble = (delta as u8) & 0x0f;
                byte |= if k == 0 { nibble << 4 } else { nibble };
            }
            raw.push(byte);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let compressed = z
            .write_all(&raw)
            .and_then(|()| z.finish())
            .unwrap_or_default();
        let pieces: Vec<&[u8]> = compressed.chunks(MAX_PATCH_PIECE).collect();
        let seq_size = u8::try_from(pieces.len()).unwrap_or(u8::MAX);
        for (i, piece) in pieces.into_iter().enumerate() {
            out.push(QrpMessage::Patch {
                seq_no: u8::try_from(i + 1).unwrap_or(u8::MAX),
                seq_size,
                compressor: Compressor::Zlib,
                entry_bits: 4,
                data: piece.to_vec(),
            });
        }
        out
    }
}

/// The receiving side: applies RESET and PATCH messages in order, as an
/// ultrapeer does (used to check what we send, and the captured tables).
#[derive(Debug, Default)]
pub struct QrpReceiver {
    table: Option<QueryRouteTable>,
    pending: Vec<u8>,
    expect: Option<(u8, u8, Compressor, u8)>,
}

impl QrpReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> QrpReceiver {
        QrpReceiver::default()
    }

    /// The table as of the last complete patch (or reset).
    pub fn table(&self) -> Option<&QueryRouteTable> {
        self.table.as_ref()
    }

    /// Applies one message. A patch out of sequence or one that does not
    /// fit the table is an error (and the partial patch is dropped).
    pub fn apply(&mut self, message: &QrpMessage) -> Result<()> {
        match message {
            QrpMessage::Reset {
                table_length,
                infinity,
            } => {
                self.table = Some(QueryRouteTable::new(*table_length, *infinity)?);
                self.pending.clear();
                self.expect = None;
                Ok(())
            }
            QrpMessage::Patch {
                seq_no,
                seq_size,
                compressor,
                entry_bits,
                data,
            } => {
                let result = self.apply_piece(*seq_no, *seq_size, *compressor, *entry_bits, data);
                if result.is_err() {
                    self.pending.clear();
                    self.expect = None;
                }
                result
            }
        }
    }

    fn apply_piece(
        &mut self,
        seq_no: u8,
        seq_size: u8,
        compressor: Compressor,
        entry_bits: u8,
        data: &[u8],
    ) -> Result<()> {
        let slots = match &self.table {
            Some(t) => t.present.len(),
            None => return Err(DecodeError::BadField("qrp patch before reset")),
        };
        let want = self.expect.map_or(1, |(next, ..)| next);
        if seq_no != want {
            return Err(DecodeError::BadField("qrp patch sequence"));
        }
        if let Some((_, size, c, bits)) = self.expect {
            if (size, c, bits) != (seq_size, compressor, entry_bits) {
                return Err(DecodeError::BadField("qrp patch sequence"));
            }
        }
        // The whole patch is slots * entry_bits / 8 bytes once inflated;
        // compressed it is no bigger than that plus zlib's overhead.
        let raw_len = slots * usize::from(entry_bits) / 8;
        let max_pending = raw_len + raw_len / 8 + 1024;
        if self.pending.len() + data.len() > max_pending {
            return Err(DecodeError::TooLong {
                len: self.pending.len() + data.len(),
                max: max_pending,
            });
        }
        self.pending.extend_from_slice(data);
        if seq_no < seq_size {
            self.expect = Some((seq_no + 1, seq_size, compressor, entry_bits));
            return Ok(());
        }
        self.expect = None;
        let bytes = std::mem::take(&mut self.pending);
        let raw = match compressor {
            Compressor::None => bytes,
            Compressor::Zlib => {
                let mut raw = Vec::new();
                let limit = u64::try_from(raw_len).unwrap_or(u64::MAX) + 1;
                flate2::read::ZlibDecoder::new(bytes.as_slice())
                    .take(limit)
                    .read_to_end(&mut raw)
                    .map_err(|_| DecodeError::Inflate)?;
                raw
            }
        };
        if raw.len() != raw_len {
            return Err(if raw.len() < raw_len {
                DecodeError::Truncated
            } else {
                DecodeError::TrailingBytes
            });
        }
        let Some(table) = self.table.as_mut() else {
            return Err(DecodeError::BadField("qrp patch before reset"));
        };
        let infinity = i16::from(table.infinity);
        let per_byte = 8 / usize::from(entry_bits);
        for (i, slot) in table.present.iter_mut().enumerate() {
            let byte = raw.get(i / per_byte).copied().unwrap_or(0);
            let k = i % per_byte;
            let shift = 8 - usize::from(entry_bits) * (k + 1);
            let mask = ((1u16 << entry_bits) - 1) as u8;
            let field = (byte >> shift) & mask;
            if entry_bits == 1 {
                // One bit per slot: a set bit flips the slot.
                if field == 1 {
                    *slot = !*slot;
                }
                continue;
            }
            // Sign-extend the field.
            let sign = 1u8 << (entry_bits - 1);
            let delta = i16::from(field)
                - if field & sign != 0 {
                    1 << entry_bits
                } else {
                    0
                };
            if delta == 0 {
                continue;
            }
            let value = if *slot { 1 } else { infinity } + delta;
            *slot = value < infinity;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_the_published_vectors() {
        let cases: &[(&str, u32, u32)] = &[
            ("", 13, 0),
            ("eb", 13, 6791),
            ("ebc", 13, 7082),
            ("ebck", 13, 6698),
            ("ebckl", 13, 3179),
            ("ebcklm", 13, 3235),
            ("ebcklme", 13, 6438),
            ("ebcklmen", 13, 1062),
            ("ebcklmenq", 13, 3527),
            ("", 16, 0),
            ("n", 16, 65003),
            ("nd", 16, 54193),
            ("ndf", 16, 4953),
            ("ndfl", 16, 58201),
            ("ndfla", 16, 34830),
            ("ndflal", 16, 36910),
            ("ndflale", 16, 34586),
            ("ndflalem", 16, 37658),
            ("ndflaleme", 16, 45559),
            ("ol2j34lj", 10, 318),
            ("asdfas23", 10, 503),
            ("9um3o34fd", 10, 758),
            ("a234d", 10, 281),
            ("a3f", 10, 767),
            ("3nja9", 10, 581),
            ("2459345938032343", 10, 146),
            ("7777a88a8a8a8", 10, 342),
            ("asdfjklkj3k", 10, 861),
            ("adfk32l", 10, 1011),
            ("zzzzzzzzzzz", 10, 944),
            ("3NJA9", 10, 581),
            ("3nJa9", 10, 581),
        ];
        for &(word, bits, want) in cases {
            assert_eq!(qrp_hash(word.as_bytes(), bits), want, "{word:?} {bits}");
        }
    }

    #[test]
    fn messages_round_trip_and_bad_bytes_are_errors() {
        let reset = QrpMessage::Reset {
            table_length: 16384,
            infinity: 2,
        };
        assert_eq!(reset.encode(), [0, 0, 0x40, 0, 0, 2]);
        assert_eq!(QrpMessage::decode(&reset.encode()), Ok(reset));
        let patch = QrpMessage::Patch {
            seq_no: 1,
            seq_size: 2,
            compressor: Compressor::Zlib,
            entry_bits: 4,
            data: vec![1, 2, 3],
        };
        assert_eq!(QrpMessage::decode(&patch.encode()), Ok(patch));
        assert_eq!(QrpMessage::decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(QrpMessage::decode(&[0, 1, 2]), Err(DecodeError::Truncated));
        assert_eq!(
            QrpMessage::decode(&[0, 0, 0x40, 0, 0, 2, 9]),
            Err(DecodeError::TrailingBytes)
        );
        assert!(QrpMessage::decode(&[1, 2, 1, 1, 4]).is_err(), "seq 2 of 1");
        assert!(QrpMessage::decode(&[1, 1, 1, 7, 4]).is_err(), "compressor");
        assert!(QrpMessage::decode(&[1, 1, 1, 1, 3]).is_err(), "entry bits");
        assert!(QrpMessage::decode(&[2]).is_err(), "variant");
    }

    #[test]
    fn a_built_table_reaches_the_receiver_and_diffs_apply() {
        let mut first = QueryRouteTable::new(DEFAULT_TABLE_SLOTS, DEFAULT_INFINITY).expect("table");
        for w in ["hazel", "nut", "gnutella"] {
            first.add_word(w);
        }
        let msgs = first.patch_from(None);
        assert!(matches!(
            msgs.first(),
            Some(QrpMessage::Reset {
                table_length: 16384,
                infinity: 2
            })
        ));
        assert!(msgs.len() >= 2);
        let mut rx = QrpReceiver::new();
        for m in &msgs {
            let wire = m.encode();
            assert!(wire.len() <= MAX_PATCH_PIECE + 5);
            rx.apply(&QrpMessage::decode(&wire).expect("decode"))
                .expect("apply");
        }
        assert_eq!(rx.table(), Some(&first));
        assert!(rx.table().is_some_and(|t| t.contains_word("hazel")));
        assert!(!rx.table().is_some_and(|t| t.contains_word("walnut")));

        let mut second = QueryRouteTable::new(DEFAULT_TABLE_SLOTS, DEFAULT_INFINITY).expect("t");
        for w in ["hazel", "walnut"] {
            second.add_word(w);
        }
        let diff = second.patch_from(Some(&first));
        assert!(diff.iter().all(|m| matches!(m, QrpMessage::Patch { .. })));
        for m in &diff {
            rx.apply(m).expect("apply diff");
        }
        assert_eq!(rx.table(), Some(&second));
        assert!(second.patch_from(Some(&second)).is_empty());
    }

    #[test]
    fn an_empty_library_still_sends_a_patch() {
        let empty = QueryRouteTable::new(1024, 2).expect("table");
        let msgs = empty.patch_from(None);
        assert_eq!(msgs.len(), 2);
        let mut rx = QrpReceiver::new();
        for m in &msgs {
            rx.apply(m).expect("apply");
        }
        assert_eq!(rx.table().map(QueryRouteTable::present_count), Some(0));
    }

    #[test]
    fn patches_out_of_order_or_oversized_are_refused() {
        let mut rx = QrpReceiver::new();
        let p = QrpMessage::Patch {
            seq_no: 1,
            seq_size: 1,
            compressor: Compressor::None,
            entry_bits: 4,
            data: vec![0; 512],
        };
        assert!(rx.apply(&p).is_err(), "no reset yet");
        rx.apply(&QrpMessage::Reset {
            table_length: 1024,
            infinity: 2,
        })
        .expect("reset");
        assert_eq!(rx.apply(&p), Ok(()));
        let second = QrpMessage::Patch {
            seq_no: 2,
            seq_size: 2,
            compressor: Compressor::None,
            entry_bits: 4,
            data: vec![],
        };
        assert!(rx.apply(&second).is_err());
        let big = QrpMessage::Patch {
            seq_no: 1,
            seq_size: 1,
            compressor: Compressor::None,
            entry_bits: 4,
            data: vec![0; 100_000],
        };
        assert!(rx.apply(&big).is_err());
        assert!(rx
            .apply(&QrpMessage::Reset {
                table_length: 1000,
                infinity: 2
            })
            .is_err());
        assert!(rx
            .apply(&QrpMessage::Reset {
                table_length: 1 << 30,
                infinity: 2
            })
            .is_err());
    }
}
