//! The download mesh on the serving side: other servents known to have a
//! file we share, told to whoever downloads it from us (`X-Alt`), so that
//! downloaders find more sources without another search.
//!
//! Two kinds of knowledge, kept apart:
//! - *verified*: a source our own download of the file took bytes from and
//!   the whole file then matched its SHA-1;
//! - *heard*: a location a downloader's `X-Alt` (or
//!   `X-Gnutella-Alternate-Location`) named for a file it asked us for.
//!
//! What a peer can do with it is bounded: at most [`HEARD_PER_REQUEST`]
//! locations are taken from one request, a file keeps at most
//! [`PER_FILE`] (a heard one never displaces a verified one), at most
//! [`MAX_FILES`] files are remembered (the oldest forgotten first), and a
//! location not confirmed for [`MAX_AGE`] is no longer passed on. A reply
//! names at most [`PER_REPLY`], verified first, and never the downloader's
//! own listening address when its request gives one (`X-Node`).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// Files with remembered locations.
pub const MAX_FILES: usize = 4096;
/// Locations remembered per file.
pub const PER_FILE: usize = 16;
/// Locations named in one reply.
pub const PER_REPLY: usize = 10;
/// Locations taken from one request's headers.
pub const HEARD_PER_REQUEST: usize = 10;
/// A location not confirmed for this long is not passed on.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
struct Location {
    addr: SocketAddrV4,
    verified: bool,
    seen: Instant,
}

/// Known locations of shared files, by SHA-1.
#[derive(Debug, Default)]
pub struct Mesh {
    files: HashMap<[u8; 20], Vec<Location>>,
    /// Files in the order they were first remembered (the oldest is forgotten first).
    order: VecDeque<[u8; 20]>,
}

impl Mesh {
    pub fn new() -> Mesh {
        Mesh::default()
    }

    /// Files with remembered locations.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Our download of `sha1` took bytes from `addr` and the file verified.
    pub fn verified(&mut self, sha1: [u8; 20], addr: SocketAddrV4, now: Instant) {
        self.add(sha1, addr, true, now);
    }

    /// A downloader named these locations for `sha1` (at most
    /// [`HEARD_PER_REQUEST`] are taken).
    pub fn heard(
        &mut self,
        sha1: [u8; 20],
        addrs: impl IntoIterator<Item = SocketAddrV4>,
        now: Instant,
    ) {
        for addr in addrs.into_iter().take(HEARD_PER_REQUEST) {
            self.add(sha1, addr, false, now);
        }
    }

    /// The locations to name in a reply about `sha1` to a downloader
    /// listening at `requester` (if it said): verified ones first, then the
    /// most recently seen.
    pub fn for_reply(
        &self,
        sha1: &[u8; 20],
        requester: Option<SocketAddrV4>,
        now: Instant,
    ) -> Vec<SocketAddrV4> {
        let Some(locations) = self.files.get(sha1) else {
            return Vec::new();
        };
        let mut fresh: Vec<&Location> = locations
            .iter()
            .filter(|l| now.saturating_duration_since(l.seen) < MAX_AGE)
            .filter(|l| Some(l.addr) != requester)
            .collect();
        fresh.sort_by(|a, b| b.verified.cmp(&a.verified).then(b.seen.cmp(&a.seen)));
        fresh.into_iter().take(PER_REPLY).map(|l| l.addr).collect()
    }

    fn add(&mut self, sha1: [u8; 20], addr: SocketAddrV4, verified: bool, now: Instant) {
        if !self.files.contains_key(&sha1) {
            while self.files.len() >= MAX_FILES {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                self.files.remove(&oldest);
            }
            self.order.push_back(sha1);
        }
        let locations = self.files.entry(sha1).or_default();
        if let Some(known) = locations.iter_mut().find(|l| l.addr == addr) {
            known.seen = now;
            known.verified |= verified;
            return;
        }
        if locations.len() >= PER_FILE {
            // Make room by forgetting the oldest heard location, or (only for
            // a verified newcomer) the oldest of all.
            let victim = locations
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.verified || verified)
                .min_by_key(|(_, l)| (l.verified, l.seen))
                .map(|(i, _)| i);
            match victim {
                Some(i) => {
                    locations.swap_remove(i);
                }
                None => return,
            }
        }
        locations.push(Location {
            addr,
            verified,
            seen: now,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(n: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n), 6346)
    }

    const FILE: [u8; 20] = [7; 20];
    const ANYONE: Option<SocketAddrV4> = None;

    #[test]
    fn a_reply_names_verified_locations_first_and_never_the_downloader_itself() {
        let now = Instant::now();
        let mut mesh = Mesh::new();
        mesh.heard(FILE, [addr(1), addr(2)], now);
        mesh.verified(FILE, addr(3), now);
        let reply = mesh.for_reply(&FILE, Some(addr(2)), now);
        assert_eq!(reply, vec![addr(3), addr(1)]);
        assert!(mesh.for_reply(&[8; 20], ANYONE, now).is_empty());
    }

    #[test]
    fn heard_locations_never_push_out_verified_ones() {
        let now = Instant::now();
        let mut mesh = Mesh::new();
        for n in 0..PER_FILE as u8 {
            mesh.verified(FILE, addr(n), now);
        }
        for _ in 0..50 {
            mesh.heard(
                FILE,
                (0..HEARD_PER_REQUEST as u8).map(|n| addr(100 + n)),
                now,
            );
        }
        let reply = mesh.for_reply(&FILE, ANYONE, now);
        assert_eq!(reply.len(), PER_REPLY);
        assert!(reply.iter().all(|a| a.ip().octets()[3] < PER_FILE as u8));
    }

    #[test]
    fn one_request_adds_a_bounded_number_and_files_are_bounded() {
        let now = Instant::now();
        let mut mesh = Mesh::new();
        mesh.heard(FILE, (0..200).map(|n| addr(n as u8)), now);
        assert_eq!(mesh.for_reply(&FILE, ANYONE, now).len(), HEARD_PER_REQUEST);
        for n in 0..(MAX_FILES as u32 + 100) {
            let mut sha1 = [0u8; 20];
            sha1[..4].copy_from_slice(&n.to_be_bytes());
            mesh.heard(sha1, [addr(1)], now);
        }
        assert_eq!(mesh.files(), MAX_FILES);
    }

    #[test]
    fn stale_locations_are_not_passed_on() {
        let then = Instant::now();
        let mut mesh = Mesh::new();
        mesh.heard(FILE, [addr(1)], then);
        let later = then + MAX_AGE + Duration::from_secs(1);
        assert!(mesh.for_reply(&FILE, ANYONE, later).is_empty());
        mesh.heard(FILE, [addr(1)], later);
        assert_eq!(mesh.for_reply(&FILE, ANYONE, later), vec![addr(1)]);
    }
}
