//! hazel-protocol: everything Hazel puts on a wire, and nothing else.
//!
//! No sockets, no threads, no clock. Every decoder is total: any byte
//! sequence yields a value or a typed error, never a panic, and no buffer is
//! ever sized from a length field that has not been checked first.
//!
//! Map of the crate:
//! - [`altloc`]: alternate locations (`X-Alt`, `X-Gnutella-Alternate-Location`).
//! - [`error`]: [`DecodeError`], the error of every decoder.
//! - [`header`]: the 23-byte Gnutella descriptor header, descriptor ids, payload types.
//! - [`descriptor`]: Ping, Pong, Query, QueryHit, Push, Bye, and unknown payloads kept whole.
//! - [`ggep`]: GGEP extension blocks (COBS, deflate), `IPP`/`PUSH` host lists. [`huge`]: `urn:sha1:` / `urn:bitprint:`.
//! - [`framer`]: bytes in, whole descriptors out; the optional zlib layer of 0.6 links.
//! - [`handshake`]: 0.4 and 0.6 connection handshakes, incremental.
//! - [`giv`]: push callback lines. [`http`]: request/status lines, ranges, for transfers.
//! - [`napster`]: OpenNap frames and messages, client and server side.
//! - [`magnet`]: magnet links (`xt`, `dn`, `xl`, `xs`/`as` sources).
//! - [`qrp`]: Query Routing Protocol tables, RESET/PATCH messages and the QRP keyword hash.
//! - [`pcap`]: reading captures (TCP reassembly, UDP) for conformance tests and `hazel-trace`.
//! - [`thex`]: Tiger tree hashes (THEX): the streaming tree hasher, range verification, and the
//!   DIME serialization served at `/uri-res/N2X`.
//! - [`text`]: showing network strings on a terminal or in a log (control characters escaped).
//! - [`traces`]: where the shared captures are found (`$HAZEL_TRACES` or `../shared/traces`).
//! - [`vendor`]: vendor messages (Messages Supported, push-proxy request and acknowledgement).

pub mod altloc;
pub mod descriptor;
pub mod error;
pub mod framer;
pub mod ggep;
pub mod giv;
pub mod handshake;
pub mod header;
pub mod http;
pub mod huge;
pub mod magnet;
pub mod napster;
pub mod pcap;
pub mod qrp;
pub mod text;
pub mod thex;
pub mod traces;
pub mod vendor;

pub use error::DecodeError;
