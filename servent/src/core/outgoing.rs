//! Outgoing links: connects under way, keeping `peers` links up from the
//! host cache, and knowing our own addresses (so we never dial ourselves).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::{Action, Core, Direction};

/// A pending connect the event loop never reported is forgotten after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// User-requested connects remembered (to report their failure).
const MAX_USER_CONNECTS: usize = 64;
/// Dial attempts per tick, so a cache of dead hosts is not dialled at once.
const DIALS_PER_TICK: usize = 4;

/// Connects under way and what we know of our own address.
#[derive(Debug, Default)]
pub struct Dialing {
    pending: HashMap<SocketAddr, Instant>,
    /// Pending connects the user asked for: their failure is an event.
    asked: HashSet<SocketAddr>,
    /// Addresses found to be ourselves.
    pub self_addrs: HashSet<SocketAddr>,
    /// Our address as peers see it (`Remote-IP`), used when listening on 0.0.0.0.
    pub external_ip: Option<Ipv4Addr>,
}

impl Dialing {
    pub fn start(&mut self, addr: SocketAddr, asked_by_user: bool, now: Instant) {
        self.pending.insert(addr, now);
        if asked_by_user && self.asked.len() < MAX_USER_CONNECTS {
            self.asked.insert(addr);
        }
    }

    /// The connect to `addr` completed.
    pub fn connected(&mut self, addr: &SocketAddr) {
        self.pending.remove(addr);
        self.asked.remove(addr);
    }

    /// The connect to `addr` failed; true when the user asked for it.
    pub fn failed(&mut self, addr: &SocketAddr) -> bool {
        self.pending.remove(addr);
        self.asked.remove(addr)
    }

    pub fn is_pending(&self, addr: &SocketAddr) -> bool {
        self.pending.contains_key(addr)
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn clear(&mut self) {
        self.pending.clear();
        self.asked.clear();
    }

    /// Forgets connects the event loop never reported.
    pub fn expire(&mut self, now: Instant) {
        self.pending
            .retain(|_, started| now.saturating_duration_since(*started) < CONNECT_TIMEOUT);
        let pending = &self.pending;
        self.asked.retain(|a| pending.contains_key(a));
    }

    pub fn learn_external_ip(&mut self, ip: IpAddr) {
        if let IpAddr::V4(v4) = ip {
            if !v4.is_unspecified() {
                self.external_ip = Some(v4);
            }
        }
    }
}

impl Core {
    pub(super) fn is_self_addr(&self, addr: &SocketAddr) -> bool {
        if self.dialing.self_addrs.contains(addr) || *addr == self.config.listen_addr {
            return true;
        }
        // Listening on 0.0.0.0:P: any local address with port P is us.
        let listen = self.config.listen_addr;
        listen.ip().is_unspecified() && addr.port() == listen.port() && addr.ip().is_loopback()
    }

    pub(super) fn is_connected_to(&self, addr: &SocketAddr) -> bool {
        self.dialing.is_pending(addr)
            || self
                .links
                .iter()
                .any(|c| c.peer == *addr || c.listen_addr == Some(*addr))
    }

    pub(super) fn outgoing_count(&self) -> usize {
        self.dialing.pending()
            + self
                .links
                .iter()
                .filter(|c| c.direction == Direction::Outgoing && !c.is_closing())
                .count()
    }

    /// Dials hosts from the cache until `peers` outgoing links are up (or
    /// being opened), within `max_peers` in all.
    pub(super) fn maintain_outgoing(&mut self, now: Instant) {
        for _ in 0..DIALS_PER_TICK {
            if self.outgoing_count() >= self.config.peers
                || self.links.len() + self.dialing.pending() >= self.config.max_peers
            {
                return;
            }
            let pick = self
                .hosts
                .pick(now, |a| self.is_self_addr(a) || self.is_connected_to(a));
            let Some(addr) = pick else {
                return;
            };
            self.hosts.dialling(&addr, now);
            self.dialing.start(addr, false, now);
            self.links.push_action(Action::Connect(addr));
        }
    }
}
