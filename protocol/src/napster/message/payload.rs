//! The payloads of several fields, one type each, with their codec
//! ([`Fields`]). Which message numbers use which type is in the enums of
//! the parent module; the field order of each payload is written here once.

use std::net::Ipv4Addr;

use super::kind;
use super::UserLevel;
use crate::error::{DecodeError, Result};
use crate::napster::codec::{encode_payload, Fields};
use crate::napster::fields::{FieldReader, FieldWriter};
use crate::napster::EncodeError;

type EncodeResult = std::result::Result<(), EncodeError>;

/// The five fields a login (2) and a new-user login (6) begin with:
/// `<nick> <password> <port> "<client-info>" <link-type>`.
struct Credentials<'a> {
    nick: &'a str,
    password: &'a [u8],
    port: u16,
    client_info: &'a [u8],
    link_speed: u32,
}

impl<'a> Fields<'a> for Credentials<'a> {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(Credentials {
            nick: r.str("nick")?,
            password: r.token("password")?,
            port: r.number("port")?,
            client_info: r.quoted("client info")?,
            link_speed: r.number("link speed")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.token("password", self.password)?;
        w.number(u64::from(self.port));
        w.quoted("client info", self.client_info)?;
        w.number(u64::from(self.link_speed));
        Ok(())
    }
}

/// Login (2): `<nick> <password> <port> "<client-info>" <link-type> [build]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub nick: String,
    pub password: Vec<u8>,
    /// Data port; 0 means firewalled (push only).
    pub port: u16,
    pub client_info: Vec<u8>,
    pub link_speed: u32,
    pub build: Option<u32>,
}

impl<'a> Fields<'a> for Login {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        let c = Credentials::read(r)?;
        Ok(Login {
            nick: c.nick.to_owned(),
            password: c.password.to_vec(),
            port: c.port,
            client_info: c.client_info.to_vec(),
            link_speed: c.link_speed,
            build: r.optional_number("build")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.write(&Credentials {
            nick: &self.nick,
            password: &self.password,
            port: self.port,
            client_info: &self.client_info,
            link_speed: self.link_speed,
        })?;
        if let Some(build) = self.build {
            w.number(u64::from(build));
        }
        Ok(())
    }
}

/// New-user login (6): a login plus the e-mail address to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUserLogin {
    pub nick: String,
    pub password: Vec<u8>,
    pub port: u16,
    pub client_info: Vec<u8>,
    pub link_speed: u32,
    pub email: Vec<u8>,
}

impl<'a> Fields<'a> for NewUserLogin {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        let c = Credentials::read(r)?;
        Ok(NewUserLogin {
            nick: c.nick.to_owned(),
            password: c.password.to_vec(),
            port: c.port,
            client_info: c.client_info.to_vec(),
            link_speed: c.link_speed,
            email: r.token("email")?.to_vec(),
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.write(&Credentials {
            nick: &self.nick,
            password: &self.password,
            port: self.port,
            client_info: &self.client_info,
            link_speed: self.link_speed,
        })?;
        w.token("email", &self.email)
    }
}

/// A shared file, borrowed: `"<name>" <md5> <size> <bitrate> <freq>
/// <duration>`, the fields of a share (100), of each file of a batch (870),
/// and the start of a browse entry (212) and of a search result (201).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFileRef<'a> {
    pub name: &'a [u8],
    pub md5: &'a [u8],
    pub size: u64,
    pub bitrate: u32,
    pub freq: u32,
    pub duration: u32,
}

impl<'a> Fields<'a> for SharedFileRef<'a> {
    #[inline]
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(SharedFileRef {
            name: r.quoted("file name")?,
            md5: r.token("md5")?,
            size: r.number("size")?,
            bitrate: r.number("bitrate")?,
            freq: r.number("frequency")?,
            duration: r.number("duration")?,
        })
    }

    #[inline]
    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.quoted("file name", self.name)?;
        w.token("md5", self.md5)?;
        w.number(self.size);
        w.number(u64::from(self.bitrate));
        w.number(u64::from(self.freq));
        w.number(u64::from(self.duration));
        Ok(())
    }
}

impl SharedFileRef<'_> {
    pub fn to_owned(&self) -> SharedFile {
        SharedFile {
            name: self.name.to_vec(),
            md5: self.md5.to_vec(),
            size: self.size,
            bitrate: self.bitrate,
            freq: self.freq,
            duration: self.duration,
        }
    }
}

/// A shared file as announced by 100 (`name` is the full path as the client
/// sent it, usually with `\` separators), or one entry of an 870 batch
/// (`name` is then relative to the batch's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub name: Vec<u8>,
    /// An md5 hex string, or whatever the client put there (`nomd5computed`,
    /// `WMA-FILE`).
    pub md5: Vec<u8>,
    pub size: u64,
    pub bitrate: u32,
    pub freq: u32,
    pub duration: u32,
}

impl SharedFile {
    pub fn borrowed(&self) -> SharedFileRef<'_> {
        SharedFileRef {
            name: &self.name,
            md5: &self.md5,
            size: self.size,
            bitrate: self.bitrate,
            freq: self.freq,
            duration: self.duration,
        }
    }
}

impl<'a> Fields<'a> for SharedFile {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        SharedFileRef::read(r).map(|f| f.to_owned())
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        self.borrowed().write(w)
    }
}

/// One file of a batched share (870); the same fields as [`SharedFile`].
pub type BatchFile = SharedFile;

/// Batched share (870): `"<dir>" "<file>" md5 size bitrate freq duration
/// ["<file>" …]`, at least one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareBatch {
    pub directory: Vec<u8>,
    pub files: Vec<BatchFile>,
}

/// One file of a batch, or `None` (and nothing read) if what follows is not
/// a whole entry.
fn read_batch_entry(r: &mut FieldReader<'_>) -> Option<SharedFile> {
    if !r.next_is_quoted() {
        return None;
    }
    let mut attempt = r.clone();
    let file = SharedFile::read(&mut attempt).ok()?;
    *r = attempt;
    Some(file)
}

impl<'a> Fields<'a> for ShareBatch {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        // The files are the run of whole entries after the directory;
        // whatever follows them is trailing fields.
        let directory = r.quoted("directory")?.to_vec();
        let mut files = Vec::new();
        while let Some(file) = read_batch_entry(r) {
            files.push(file);
        }
        if files.is_empty() {
            // Say which field of the first entry is wrong.
            SharedFileRef::read(r)?;
            return Err(DecodeError::BadField("file name"));
        }
        Ok(ShareBatch { directory, files })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        if self.files.is_empty() {
            return Err(EncodeError::BadToken("file name"));
        }
        w.quoted("directory", &self.directory)?;
        for file in &self.files {
            w.write(file)?;
        }
        Ok(())
    }
}

/// The full path of a batched file: `<directory>\<file>`, the separator
/// Napster clients use (not added when the directory already ends in one).
pub fn batch_path(directory: &[u8], file: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(directory.len() + 1 + file.len());
    path.extend_from_slice(directory);
    if !directory.is_empty() && !matches!(directory.last(), Some(b'\\') | Some(b'/')) {
        path.push(b'\\');
    }
    path.extend_from_slice(file);
    path
}

/// A search result (201), borrowed: a server encodes one from its index
/// with [`SearchResultRef::encode`], no owned message in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchResultRef<'a> {
    pub name: &'a [u8],
    pub md5: &'a [u8],
    pub size: u64,
    pub bitrate: u32,
    pub freq: u32,
    pub duration: u32,
    pub nick: &'a str,
    pub ip: Ipv4Addr,
    pub link_speed: u32,
    pub weight: Option<i32>,
}

impl<'a> Fields<'a> for SearchResultRef<'a> {
    #[inline]
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        let file = SharedFileRef::read(r)?;
        Ok(SearchResultRef {
            name: file.name,
            md5: file.md5,
            size: file.size,
            bitrate: file.bitrate,
            freq: file.freq,
            duration: file.duration,
            nick: r.str("nick")?,
            ip: r.ip("ip")?,
            link_speed: r.number("link speed")?,
            weight: if r.at_end() {
                None
            } else {
                Some(r.signed("weight")?)
            },
        })
    }

    #[inline]
    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.write(&SharedFileRef {
            name: self.name,
            md5: self.md5,
            size: self.size,
            bitrate: self.bitrate,
            freq: self.freq,
            duration: self.duration,
        })?;
        w.token("nick", self.nick.as_bytes())?;
        w.ip(self.ip);
        w.number(u64::from(self.link_speed));
        if let Some(weight) = self.weight {
            w.signed(weight);
        }
        Ok(())
    }
}

impl SearchResultRef<'_> {
    /// Appends the whole 201 frame to `out` (nothing on error).
    #[inline]
    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        encode_payload(kind::SEARCH_RESULT, self, out)
    }

    pub fn to_owned(&self) -> SearchResult {
        SearchResult {
            name: self.name.to_vec(),
            md5: self.md5.to_vec(),
            size: self.size,
            bitrate: self.bitrate,
            freq: self.freq,
            duration: self.duration,
            nick: self.nick.to_owned(),
            ip: self.ip,
            link_speed: self.link_speed,
            weight: self.weight,
        }
    }
}

/// A search result (201): `"<name>" <md5> <size> <bitrate> <freq>
/// <duration> <nick> <ip> <link-type> [weight]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    pub name: Vec<u8>,
    pub md5: Vec<u8>,
    pub size: u64,
    pub bitrate: u32,
    pub freq: u32,
    pub duration: u32,
    pub nick: String,
    pub ip: Ipv4Addr,
    pub link_speed: u32,
    pub weight: Option<i32>,
}

impl SearchResult {
    pub fn borrowed(&self) -> SearchResultRef<'_> {
        SearchResultRef {
            name: &self.name,
            md5: &self.md5,
            size: self.size,
            bitrate: self.bitrate,
            freq: self.freq,
            duration: self.duration,
            nick: &self.nick,
            ip: self.ip,
            link_speed: self.link_speed,
            weight: self.weight,
        }
    }
}

impl<'a> Fields<'a> for SearchResult {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        SearchResultRef::read(r).map(|s| s.to_owned())
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        self.borrowed().write(w)
    }
}

/// A user and one of its files, `<nick> "<file>"`: a download request
/// (203), its firewalled form (500), the sharer's accept (608), and the
/// refusals (206, 609).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFile {
    pub nick: String,
    pub name: Vec<u8>,
}

impl<'a> Fields<'a> for UserFile {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(UserFile {
            nick: r.string("nick")?,
            name: r.quoted("file name")?.to_vec(),
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.quoted("file name", &self.name)
    }
}

/// Upload request (607), someone wants a file of yours: `<nick> "<file>"
/// [link-type]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub file: UserFile,
    pub link_speed: Option<u32>,
}

impl<'a> Fields<'a> for UploadRequest {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        let file = r.read()?;
        let link_speed = if r.at_end() {
            None
        } else {
            Some(r.number("link speed")?)
        };
        Ok(UploadRequest { file, link_speed })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.write(&self.file)?;
        if let Some(speed) = self.link_speed {
            w.number(u64::from(speed));
        }
        Ok(())
    }
}

/// Queue limit (619), the sharer refuses because the downloader hit its
/// queue limit: `<nick> "<file>" <limit>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLimit {
    pub file: UserFile,
    pub limit: u32,
}

impl<'a> Fields<'a> for QueueLimit {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(QueueLimit {
            file: r.read()?,
            limit: r.number("queue limit")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.write(&self.file)?;
        w.number(u64::from(self.limit));
        Ok(())
    }
}

/// Queue limit reached (620), told to the downloader: `<nick> "<file>"
/// <size> <limit>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLimitReached {
    pub file: UserFile,
    pub size: u64,
    pub limit: u32,
}

impl<'a> Fields<'a> for QueueLimitReached {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(QueueLimitReached {
            file: r.read()?,
            size: r.number("size")?,
            limit: r.number("queue limit")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.write(&self.file)?;
        w.number(self.size);
        w.number(u64::from(self.limit));
        Ok(())
    }
}

/// Where to fetch a file: the download ack (204) and its firewalled twin
/// (501, sent to the sharer with the downloader's address): `<nick> <ip>
/// <port> "<file>" <md5> <link-type>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadAck {
    pub nick: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub name: Vec<u8>,
    pub md5: Vec<u8>,
    pub link_speed: u32,
}

impl<'a> Fields<'a> for DownloadAck {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(DownloadAck {
            nick: r.string("nick")?,
            ip: r.ip("ip")?,
            port: r.number("port")?,
            name: r.quoted("file name")?.to_vec(),
            md5: r.token("md5")?.to_vec(),
            link_speed: r.number("link speed")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.ip(self.ip);
        w.number(u64::from(self.port));
        w.quoted("file name", &self.name)?;
        w.token("md5", &self.md5)?;
        w.number(u64::from(self.link_speed));
        Ok(())
    }
}

/// Browse entry (212): `<nick> "<file>" md5 size bitrate freq duration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseEntry {
    pub nick: String,
    pub file: SharedFile,
}

impl<'a> Fields<'a> for BrowseEntry {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(BrowseEntry {
            nick: r.string("nick")?,
            file: r.read()?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.write(&self.file)
    }
}

/// End of a browse (213): `<nick> [ip]` (no address when the user is not
/// online).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseEnd {
    pub nick: String,
    pub ip: Option<Ipv4Addr>,
}

impl<'a> Fields<'a> for BrowseEnd {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        let nick = r.string("nick")?;
        let ip = if r.at_end() { None } else { Some(r.ip("ip")?) };
        Ok(BrowseEnd { nick, ip })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        if let Some(ip) = self.ip {
            w.ip(ip);
        }
        Ok(())
    }
}

/// Server stats (214 from the server): `<users> <files> <gigabytes>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    pub users: u64,
    pub files: u64,
    pub gigabytes: u64,
}

impl<'a> Fields<'a> for ServerStats {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(ServerStats {
            users: r.number("users")?,
            files: r.number("files")?,
            gigabytes: r.number("gigabytes")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.number(self.users);
        w.number(self.files);
        w.number(self.gigabytes);
        Ok(())
    }
}

/// Set user level (606): `<nick> <level>`, the level as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelChange {
    pub nick: String,
    pub level: Vec<u8>,
}

impl<'a> Fields<'a> for LevelChange {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(LevelChange {
            nick: r.string("nick")?,
            level: r.token("level")?.to_vec(),
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.token("level", &self.level)
    }
}

/// An optional reason: one field, quoted as clients send it (or a single
/// bare word, as opennap-ng reads it).
fn read_reason(r: &mut FieldReader<'_>) -> Result<Option<Vec<u8>>> {
    if r.at_end() {
        return Ok(None);
    }
    Ok(Some(r.quoted("reason")?.to_vec()))
}

fn write_reason(w: &mut FieldWriter<'_>, reason: &Option<Vec<u8>>) -> EncodeResult {
    match reason {
        Some(reason) => w.quoted("reason", reason),
        None => Ok(()),
    }
}

/// What a moderator acts on, and why: kill (610, a nick), ban and unban
/// (612, 614, a nick or an address): `<target> ["<reason>"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTarget {
    pub target: String,
    pub reason: Option<Vec<u8>>,
}

impl<'a> Fields<'a> for AdminTarget {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(AdminTarget {
            target: r.string("target")?,
            reason: read_reason(r)?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("target", self.target.as_bytes())?;
        write_reason(w, &self.reason)
    }
}

/// Change password (753), by an admin: `<nick> <password> ["<reason>"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordChange {
    pub nick: String,
    pub password: Vec<u8>,
    pub reason: Option<Vec<u8>>,
}

impl<'a> Fields<'a> for PasswordChange {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(PasswordChange {
            nick: r.string("nick")?,
            password: r.token("password")?.to_vec(),
            reason: read_reason(r)?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.token("password", &self.password)?;
        write_reason(w, &self.reason)
    }
}

/// Direct browse request (640 from the server): `<nick> [<ip> <port>]`,
/// `nick` wants to browse your files; the address is given when you are
/// firewalled, to connect to `nick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBrowseRequest {
    pub nick: String,
    pub connect_to: Option<(Ipv4Addr, u16)>,
}

impl<'a> Fields<'a> for DirectBrowseRequest {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        let nick = r.string("nick")?;
        let connect_to = if r.at_end() {
            None
        } else {
            Some((r.ip("ip")?, r.number("port")?))
        };
        Ok(DirectBrowseRequest { nick, connect_to })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        if let Some((ip, port)) = self.connect_to {
            w.ip(ip);
            w.number(u64::from(port));
        }
        Ok(())
    }
}

/// Direct browse accepted (641 from the server): `<nick> <ip> <port>`,
/// where to connect to browse `nick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBrowseAddress {
    pub nick: String,
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl<'a> Fields<'a> for DirectBrowseAddress {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(DirectBrowseAddress {
            nick: r.string("nick")?,
            ip: r.ip("ip")?,
            port: r.number("port")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.ip(self.ip);
        w.number(u64::from(self.port));
        Ok(())
    }
}

/// Direct browse error (642): `<nick> "<message>"`, the direct browse of
/// `nick` cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBrowseError {
    pub nick: String,
    pub message: Vec<u8>,
}

impl<'a> Fields<'a> for DirectBrowseError {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(DirectBrowseError {
            nick: r.string("nick")?,
            message: r.quoted("message")?.to_vec(),
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.quoted("message", &self.message)
    }
}

/// What moderators and up also see in a whois (604): `<total-downloads>
/// <total-uploads> <ip> <connecting-port> <data-port> <email>`, the address
/// in dotted form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoisDetails {
    pub total_downloads: u64,
    pub total_uploads: u64,
    pub ip: Ipv4Addr,
    pub connecting_port: u16,
    pub data_port: u16,
    pub email: Vec<u8>,
}

/// Whois response (604) about an online user: `<nick> "<level>" <seconds
/// online> "<channels>" "<status>" <shared> <downloads> <uploads>
/// <link-type> "<client>" [details]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoisResponse {
    pub nick: String,
    pub level: UserLevel,
    pub online_seconds: u64,
    pub channels: Vec<u8>,
    pub status: Vec<u8>,
    pub shared: u64,
    pub downloads: u64,
    pub uploads: u64,
    pub link_speed: u32,
    pub client: Vec<u8>,
    pub details: Option<WhoisDetails>,
}

fn read_level(r: &mut FieldReader<'_>, quoted: bool) -> Result<UserLevel> {
    let name = if quoted {
        r.quoted("level")?
    } else {
        r.token("level")?
    };
    UserLevel::from_name(name).ok_or(DecodeError::BadField("level"))
}

impl<'a> Fields<'a> for WhoisResponse {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        let mut whois = WhoisResponse {
            nick: r.string("nick")?,
            level: read_level(r, true)?,
            online_seconds: r.number("seconds online")?,
            channels: r.quoted("channels")?.to_vec(),
            status: r.quoted("status")?.to_vec(),
            shared: r.number("shared")?,
            downloads: r.number("downloads")?,
            uploads: r.number("uploads")?,
            link_speed: r.number("link speed")?,
            client: r.quoted("client")?.to_vec(),
            details: None,
        };
        if !r.at_end() {
            whois.details = Some(WhoisDetails {
                total_downloads: r.number("total downloads")?,
                total_uploads: r.number("total uploads")?,
                ip: r.dotted_ip("ip")?,
                connecting_port: r.number("connecting port")?,
                data_port: r.number("data port")?,
                email: r.token("email")?.to_vec(),
            });
        }
        Ok(whois)
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.quoted("level", self.level.name().as_bytes())?;
        w.number(self.online_seconds);
        w.quoted("channels", &self.channels)?;
        w.quoted("status", &self.status)?;
        w.number(self.shared);
        w.number(self.downloads);
        w.number(self.uploads);
        w.number(u64::from(self.link_speed));
        w.quoted("client", &self.client)?;
        if let Some(d) = &self.details {
            w.number(d.total_downloads);
            w.number(d.total_uploads);
            w.dotted_ip(d.ip);
            w.number(u64::from(d.connecting_port));
            w.number(u64::from(d.data_port));
            w.token("email", &d.email)?;
        }
        Ok(())
    }
}

/// Whowas (605), about a registered user who is not online: `<nick>
/// <level> <last seen>` (Unix seconds; 0 when not known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whowas {
    pub nick: String,
    pub level: UserLevel,
    pub last_seen: u64,
}

impl<'a> Fields<'a> for Whowas {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(Whowas {
            nick: r.string("nick")?,
            level: read_level(r, false)?,
            last_seen: r.number("last seen")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("nick", self.nick.as_bytes())?;
        w.token("level", self.level.name().as_bytes())?;
        w.number(self.last_seen);
        Ok(())
    }
}

/// One ban (616), listed after a 615: `<target> <set-by> "<reason>"
/// <set-at> <timeout>` (Unix seconds; a timeout of 0 never expires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanEntry {
    pub target: String,
    pub set_by: String,
    pub reason: Vec<u8>,
    pub set_at: u64,
    pub timeout: u64,
}

impl<'a> Fields<'a> for BanEntry {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(BanEntry {
            target: r.string("target")?,
            set_by: r.string("nick")?,
            reason: r.quoted("reason")?.to_vec(),
            set_at: r.number("set at")?,
            timeout: r.number("timeout")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.token("target", self.target.as_bytes())?;
        w.token("nick", self.set_by.as_bytes())?;
        w.quoted("reason", &self.reason)?;
        w.number(self.set_at);
        w.number(self.timeout);
        Ok(())
    }
}

/// How many users run one client (10118 from the server): `"<client>"
/// <users>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientVersionCount {
    pub client: Vec<u8>,
    pub users: u64,
}

impl<'a> Fields<'a> for ClientVersionCount {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        Ok(ClientVersionCount {
            client: r.quoted("client")?.to_vec(),
            users: r.number("users")?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        w.quoted("client", &self.client)?;
        w.number(self.users);
        Ok(())
    }
}

/// Server usage (10115), the sixteen numbers opennap-ng sends and TekNap's
/// `/admin stats` prints, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageStats {
    pub local_clients: u64,
    pub linked_servers: u64,
    pub users: u64,
    pub files: u64,
    /// Total size of the shared files, in bytes.
    pub shared_bytes: u64,
    pub channels: u64,
    /// When the server started, Unix seconds.
    pub started_at: u64,
    pub uptime_seconds: u64,
    /// Memory in use, bytes (opennap-ng's figure; TekNap prints it only if
    /// it is not positive, so 0 is a fine "unknown").
    pub memory_bytes: u64,
    pub registered_users: u64,
    pub kib_in_per_second: u64,
    pub kib_out_per_second: u64,
    pub searches_per_second: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub pending_searches: u64,
}

impl<'a> Fields<'a> for UsageStats {
    fn read(r: &mut FieldReader<'a>) -> Result<Self> {
        let mut n = || r.number("usage statistic");
        Ok(UsageStats {
            local_clients: n()?,
            linked_servers: n()?,
            users: n()?,
            files: n()?,
            shared_bytes: n()?,
            channels: n()?,
            started_at: n()?,
            uptime_seconds: n()?,
            memory_bytes: n()?,
            registered_users: n()?,
            kib_in_per_second: n()?,
            kib_out_per_second: n()?,
            searches_per_second: n()?,
            bytes_in: n()?,
            bytes_out: n()?,
            pending_searches: n()?,
        })
    }

    fn write(&self, w: &mut FieldWriter<'_>) -> EncodeResult {
        for value in [
            self.local_clients,
            self.linked_servers,
            self.users,
            self.files,
            self.shared_bytes,
            self.channels,
            self.started_at,
            self.uptime_seconds,
            self.memory_bytes,
            self.registered_users,
            self.kib_in_per_second,
            self.kib_out_per_second,
            self.searches_per_second,
            self.bytes_in,
            self.bytes_out,
            self.pending_searches,
        ] {
            w.number(value);
        }
        Ok(())
    }
}
