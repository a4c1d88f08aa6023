//! The client-to-client exchange on a Napster data port.
//!
//! Direct download: the downloader connects, the sharer sends the byte `1`,
//! the downloader sends `GET` then `<nick> "<file>" <offset>`, the sharer
//! answers the file size in ASCII digits followed at once by the data, or an
//! error text (`INVALID REQUEST`, `FILE NOT SHARED`). Firewalled (push): the
//! sharer connects to the downloader, reads `1`, sends `SEND` then
//! `<nick> "<file>" <size>`, and the downloader answers the offset in ASCII
//! digits (or an error text).
//!
//! Direct browse (640/641): the browser connects, reads `1`, sends
//! `GETLIST` (TekNap adds `\n`), and the browsee answers `<nick>\n` in one
//! write, then one line per shared file (the fields of a share, 100), each
//! ended by `\n`, then an empty line, and closes. Firewalled browsee: it
//! connects to the browser and sends `SENDLIST <nick>\n` and the same list.
//!
//! Nothing terminates these pieces, and peers' writes are often coalesced
//! into one read, so each parser works on a buffer and reports how many
//! bytes it used; bytes after that (file data) belong to the caller. A number
//! at the very end of the buffer may still be growing, so the reply parser
//! takes `end_of_piece`: pass `true` when no more bytes of this piece can
//! come (the peer is waiting for us, or the stream ended).

use super::fields::{parse_decimal, FieldWriter};
use super::{EncodeError, Fields, SharedFileRef};
use crate::error::{DecodeError, Result};

/// The byte the accepting side sends first.
pub const GREETING: u8 = b'1';

/// Longest request line accepted (nick, quoted name, number).
pub const MAX_REQUEST_LEN: usize = 4096;

/// Error texts peers send instead of a number.
pub const INVALID_REQUEST: &[u8] = b"INVALID REQUEST";
pub const FILE_NOT_SHARED: &[u8] = b"FILE NOT SHARED";

/// What the connecting side asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataPortRequest {
    /// `GET<nick> "<file>" <offset>`: the downloader wants `file` from `offset`.
    Get {
        nick: Vec<u8>,
        name: Vec<u8>,
        offset: u64,
    },
    /// `SEND<nick> "<file>" <size>`: a firewalled sharer pushes `file`.
    Send {
        nick: Vec<u8>,
        name: Vec<u8>,
        size: u64,
    },
    /// `GETLIST` (optionally ended by `\n` or `\r\n`): a direct browse.
    GetList,
}

/// The command word of a direct browse.
pub const GETLIST: &[u8] = b"GETLIST";

impl DataPortRequest {
    /// `GET`, `SEND` or `GETLIST`, the part clients send as its own packet.
    pub fn command(&self) -> &'static [u8] {
        match self {
            DataPortRequest::Get { .. } => b"GET",
            DataPortRequest::Send { .. } => b"SEND",
            DataPortRequest::GetList => GETLIST,
        }
    }

    /// Appends the command word and the request line.
    pub fn encode(&self, out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
        out.extend_from_slice(self.command());
        self.encode_line(out)
    }

    /// Appends `<nick> "<file>" <number>` only (nothing for `GETLIST`).
    pub fn encode_line(&self, out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
        let (nick, name, number) = match self {
            DataPortRequest::Get { nick, name, offset } => (nick, name, *offset),
            DataPortRequest::Send { nick, name, size } => (nick, name, *size),
            DataPortRequest::GetList => return Ok(()),
        };
        if nick.is_empty() || nick.iter().any(|&b| b == b' ' || b == b'"') {
            return Err(EncodeError::BadToken("nick"));
        }
        if name.contains(&b'"') {
            return Err(EncodeError::QuoteInField("file name"));
        }
        out.extend_from_slice(nick);
        out.extend_from_slice(b" \"");
        out.extend_from_slice(name);
        out.extend_from_slice(b"\" ");
        out.extend_from_slice(number.to_string().as_bytes());
        Ok(())
    }

    /// Parses a request at the start of `buf` (after the greeting).
    ///
    /// `Ok(None)`: not all of it has arrived. `Ok(Some((request, used)))`:
    /// the request ends after `used` bytes. The number ends at the first
    /// non-digit or at the end of `buf` (the peer then waits for our reply).
    ///
    /// `GETLIST` that ends where `buf` ends is taken as a browse (used 7):
    /// like a number at the end of the input, the caller lets it settle,
    /// since `GET` followed by a nick beginning with `LIST` is also
    /// possible. `GETLIST` followed by anything but a line end is a `GET`.
    pub fn parse(buf: &[u8]) -> Result<Option<(DataPortRequest, usize)>> {
        if let Some(after) = buf.strip_prefix(GETLIST) {
            match after {
                [] => return Ok(Some((DataPortRequest::GetList, GETLIST.len()))),
                [b'\n', ..] => return Ok(Some((DataPortRequest::GetList, GETLIST.len() + 1))),
                [b'\r'] => return Ok(None),
                [b'\r', b'\n', ..] => {
                    return Ok(Some((DataPortRequest::GetList, GETLIST.len() + 2)))
                }
                _ => {}
            }
        }
        let (is_get, word_len) = if buf.starts_with(b"GET") {
            (true, 3)
        } else if buf.starts_with(b"SEND") {
            (false, 4)
        } else if b"GET".starts_with(buf) || b"SEND".starts_with(buf) {
            return Ok(None);
        } else {
            return Err(DecodeError::BadField("data-port command"));
        };
        let line = buf.get(word_len..).unwrap_or(&[]);
        let limited = line.get(..MAX_REQUEST_LEN).unwrap_or(line);
        let Some((nick, name, number, used)) = parse_line(limited)? else {
            if line.len() >= MAX_REQUEST_LEN {
                return Err(DecodeError::TooLong {
                    len: line.len(),
                    max: MAX_REQUEST_LEN,
                });
            }
            return Ok(None);
        };
        let request = if is_get {
            DataPortRequest::Get {
                nick,
                name,
                offset: number,
            }
        } else {
            DataPortRequest::Send {
                nick,
                name,
                size: number,
            }
        };
        Ok(Some((request, word_len + used)))
    }
}

/// Appends the first piece of a browse list: `<nick>\n` (sent in one write).
pub fn encode_list_nick(nick: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
    if !is_list_token(nick) {
        return Err(EncodeError::BadToken("nick"));
    }
    out.extend_from_slice(nick);
    out.push(b'\n');
    Ok(())
}

/// Appends `SENDLIST <nick>\n`, what a firewalled browsee sends first.
pub fn encode_sendlist(nick: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
    if !is_list_token(nick) {
        return Err(EncodeError::BadToken("nick"));
    }
    out.extend_from_slice(b"SENDLIST ");
    encode_list_nick(nick, out)
}

/// Appends one file of a browse list: the fields of a share (100) and `\n`.
/// A name or md5 with a line end cannot be carried; nothing is appended.
pub fn encode_list_entry(
    file: &SharedFileRef<'_>,
    out: &mut Vec<u8>,
) -> std::result::Result<(), EncodeError> {
    if file.name.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(EncodeError::BadToken("file name"));
    }
    if file.md5.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(EncodeError::BadToken("md5"));
    }
    let start = out.len();
    if let Err(e) = file.write(&mut FieldWriter::new(out)) {
        out.truncate(start);
        return Err(e);
    }
    out.push(b'\n');
    Ok(())
}

/// Appends the end of a browse list: an empty line.
pub fn encode_list_end(out: &mut Vec<u8>) {
    out.push(b'\n');
}

fn is_list_token(nick: &[u8]) -> bool {
    !nick.is_empty()
        && !nick
            .iter()
            .any(|&b| matches!(b, b' ' | b'"' | b'\n' | b'\r' | 0))
}

/// A parsed `<nick> "<file>" <digits>` line: nick, file, number, bytes used.
type RequestLine = (Vec<u8>, Vec<u8>, u64, usize);

fn parse_line(line: &[u8]) -> Result<Option<RequestLine>> {
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return Ok(None);
    };
    let nick = line.get(..space).unwrap_or(&[]);
    if nick.is_empty() || nick.contains(&b'"') {
        return Err(DecodeError::BadField("nick"));
    }
    let rest = line.get(space + 1..).unwrap_or(&[]);
    match rest.first() {
        None => return Ok(None),
        Some(b'"') => {}
        Some(_) => return Err(DecodeError::BadField("file name")),
    }
    let Some(close) = rest.iter().skip(1).position(|&b| b == b'"') else {
        return Ok(None);
    };
    let name = rest.get(1..1 + close).unwrap_or(&[]);
    let after_name = rest.get(close + 2..).unwrap_or(&[]);
    match after_name.first() {
        None => return Ok(None),
        Some(b' ') => {}
        Some(_) => return Err(DecodeError::BadField("file name")),
    }
    let digits_area = after_name.get(1..).unwrap_or(&[]);
    let digits = digits_area
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return if digits_area.is_empty() {
            Ok(None)
        } else {
            Err(DecodeError::BadField("offset"))
        };
    }
    let number = parse_decimal(digits_area.get(..digits).unwrap_or(&[]))
        .ok_or(DecodeError::BadField("offset"))?;
    let used = space + 1 + close + 2 + 1 + digits;
    Ok(Some((nick.to_vec(), name.to_vec(), number, used)))
}

/// The answer to a request: the size (to GET) or offset (to SEND), or an
/// error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferReply {
    Number(u64),
    Refused(Vec<u8>),
}

impl TransferReply {
    /// Appends the reply (digits, or the error text).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TransferReply::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
            TransferReply::Refused(text) => out.extend_from_slice(text),
        }
    }

    /// Parses a reply at the start of `buf`; see the module doc for
    /// `end_of_piece`. Digits end at the first non-digit, which is where the
    /// file data begins. An error text runs to the end of what arrived.
    pub fn parse(buf: &[u8], end_of_piece: bool) -> Result<Option<(TransferReply, usize)>> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if first.is_ascii_digit() {
            let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == buf.len() && !end_of_piece {
                if digits > 20 {
                    return Err(DecodeError::BadField("transfer size"));
                }
                return Ok(None);
            }
            let number = parse_decimal(buf.get(..digits).unwrap_or(&[]))
                .ok_or(DecodeError::BadField("transfer size"))?;
            return Ok(Some((TransferReply::Number(number), digits)));
        }
        let text = buf.get(..MAX_REQUEST_LEN).unwrap_or(buf);
        let known_complete = [INVALID_REQUEST, FILE_NOT_SHARED]
            .into_iter()
            .find(|known| text.starts_with(known));
        if let Some(known) = known_complete {
            return Ok(Some((TransferReply::Refused(known.to_vec()), known.len())));
        }
        let is_prefix_of_known = [INVALID_REQUEST, FILE_NOT_SHARED]
            .into_iter()
            .any(|known| known.starts_with(text));
        if end_of_piece {
            return Ok(Some((TransferReply::Refused(text.to_vec()), text.len())));
        }
        if !is_prefix_of_known && text.len() >= MAX_REQUEST_LEN {
            return Err(DecodeError::TooLong {
                len: buf.len(),
                max: MAX_REQUEST_LEN,
            });
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_request_coalesced_with_nothing_after() {
        let buf = b"GETalice \"C:\\mp3\\song one.mp3\" 1024";
        let (req, used) = DataPortRequest::parse(buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(
            req,
            DataPortRequest::Get {
                nick: b"alice".to_vec(),
                name: b"C:\\mp3\\song one.mp3".to_vec(),
                offset: 1024
            }
        );
        let mut out = Vec::new();
        req.encode(&mut out).unwrap();
        assert_eq!(out, buf);
    }

    /// Every cut of `buf` from `from` on needs more; the whole parses, all used.
    fn whole_only(buf: &[u8], from: usize) -> DataPortRequest {
        for cut in from..buf.len() - 1 {
            assert_eq!(
                DataPortRequest::parse(&buf[..cut]).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        let (req, used) = DataPortRequest::parse(buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        req
    }

    #[test]
    fn request_parsed_in_every_split_needs_more_until_whole() {
        assert_eq!(
            whole_only(b"SENDbob \"a b.mp3\" 77", 0),
            DataPortRequest::Send {
                nick: b"bob".to_vec(),
                name: b"a b.mp3".to_vec(),
                size: 77
            }
        );
    }

    #[test]
    fn bad_requests_are_errors() {
        assert!(DataPortRequest::parse(b"PUT x").is_err());
        assert!(DataPortRequest::parse(b"GETbob noquote 1").is_err());
        assert!(DataPortRequest::parse(b"GETbob \"f\"x 1").is_err());
        assert!(DataPortRequest::parse(b"GETbob \"f\" x").is_err());
        let long = [b"GETbob \"".as_slice(), &[b'a'; MAX_REQUEST_LEN]].concat();
        assert!(matches!(
            DataPortRequest::parse(&long),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn getlist_and_its_prefixes() {
        for partial in [
            &b""[..],
            b"G",
            b"GE",
            b"GET",
            b"GETL",
            b"GETLI",
            b"GETLIS",
            b"GETLIST\r",
        ] {
            assert_eq!(
                DataPortRequest::parse(partial).unwrap(),
                None,
                "{partial:?}"
            );
        }
        assert_eq!(
            DataPortRequest::parse(b"GETLIST").unwrap(),
            Some((DataPortRequest::GetList, 7))
        );
        assert_eq!(
            DataPortRequest::parse(b"GETLIST\n").unwrap(),
            Some((DataPortRequest::GetList, 8))
        );
        assert_eq!(
            DataPortRequest::parse(b"GETLIST\r\nxyz").unwrap(),
            Some((DataPortRequest::GetList, 9))
        );
        let mut out = Vec::new();
        DataPortRequest::GetList.encode(&mut out).unwrap();
        assert_eq!(out, b"GETLIST");
    }

    #[test]
    fn get_with_a_nick_beginning_with_list_is_still_get() {
        assert_eq!(
            whole_only(b"GETLISTENER \"a.mp3\" 5", 8),
            DataPortRequest::Get {
                nick: b"LISTENER".to_vec(),
                name: b"a.mp3".to_vec(),
                offset: 5
            }
        );
        let (req, _) = DataPortRequest::parse(b"GETLIST \"a\" 1").unwrap().unwrap();
        assert!(matches!(req, DataPortRequest::Get { ref nick, .. } if nick == b"LIST"));
        assert!(DataPortRequest::parse(b"GETLISTx").unwrap().is_none());
        assert!(DataPortRequest::parse(b"GETLIST\"x \"a\" 1").is_err());
    }

    #[test]
    fn list_encoding_bytes() {
        let mut out = Vec::new();
        encode_list_nick(b"hzuser", &mut out).unwrap();
        assert_eq!(out, b"hzuser\n");
        let file = SharedFileRef {
            name: b"music\\a song.mp3",
            md5: b"0123456789abcdef0123456789abcdef",
            size: 4096,
            bitrate: 128,
            freq: 44100,
            duration: 3,
        };
        encode_list_entry(&file, &mut out).unwrap();
        encode_list_end(&mut out);
        assert_eq!(
            out,
            b"hzuser\n\"music\\a song.mp3\" 0123456789abcdef0123456789abcdef 4096 128 44100 3\n\n"
        );
        let mut push = Vec::new();
        encode_sendlist(b"hzuser", &mut push).unwrap();
        assert_eq!(push, b"SENDLIST hzuser\n");
    }

    #[test]
    fn list_encoding_refuses_what_would_break_lines() {
        let mut out = Vec::new();
        assert!(encode_list_nick(b"", &mut out).is_err());
        assert!(encode_list_nick(b"a b", &mut out).is_err());
        assert!(encode_list_nick(b"a\nb", &mut out).is_err());
        assert!(encode_sendlist(b"a\rb", &mut out).is_err());
        let file = |name: &'static [u8], md5: &'static [u8]| SharedFileRef {
            name,
            md5,
            size: 1,
            bitrate: 0,
            freq: 0,
            duration: 0,
        };
        assert!(encode_list_entry(&file(b"a\nb.mp3", b"x"), &mut out).is_err());
        assert!(encode_list_entry(&file(b"a\"b.mp3", b"x"), &mut out).is_err());
        assert!(encode_list_entry(&file(b"a.mp3", b""), &mut out).is_err());
        assert!(encode_list_entry(&file(b"a.mp3", b"x\r"), &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn size_reply_followed_by_data_in_the_same_read() {
        let buf = b"5000\xff\xfb\x90";
        let (reply, used) = TransferReply::parse(buf, false).unwrap().unwrap();
        assert_eq!(reply, TransferReply::Number(5000));
        assert_eq!(&buf[used..], b"\xff\xfb\x90");
        assert_eq!(TransferReply::parse(b"50", false).unwrap(), None);
        assert_eq!(
            TransferReply::parse(b"50", true).unwrap(),
            Some((TransferReply::Number(50), 2))
        );
    }

    #[test]
    fn refusals_are_recognised_even_when_split() {
        assert_eq!(TransferReply::parse(b"FILE NOT", false).unwrap(), None);
        assert_eq!(
            TransferReply::parse(b"FILE NOT SHARED", false).unwrap(),
            Some((TransferReply::Refused(FILE_NOT_SHARED.to_vec()), 15))
        );
        assert_eq!(
            TransferReply::parse(b"INVALID REQUEST", false).unwrap(),
            Some((TransferReply::Refused(INVALID_REQUEST.to_vec()), 15))
        );
        assert_eq!(
            TransferReply::parse(b"go away", true).unwrap(),
            Some((TransferReply::Refused(b"go away".to_vec()), 7))
        );
        assert!(TransferReply::parse(&[b'9'; 30], false).is_err());
    }
}
