//! The neighbour connections as a set, and what the event loop must do with
//! them: queue a descriptor on one (applying its send queue's drop policy,
//! and dropping a neighbour that cannot drain what must not be lost), flood
//! one to every established link but its sender, hand out output, close.
//!
//! The actions for the event loop ([`Action`]) are collected here, since
//! almost every one of them is about a connection.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::connection::{Connection, Phase};
use super::events::{Action, CoreEvent};
use super::ids::{ConnId, ConnIdHashBuilder};
use super::queue::{Class, Dropped, Frame};

/// What queueing a descriptor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Queued (the drop policy may have removed less valuable ones).
    Yes(Dropped),
    /// No such established link.
    NoLink,
    /// The link could not drain what must not be dropped: it was closed.
    Overflowed(Dropped),
}

pub struct Links {
    /// Boxed: a connection is over a kilobyte, and a hash table keeps slack
    /// slots (up to half of them empty) at the size of its values.
    conns: HashMap<ConnId, Box<Connection>, ConnIdHashBuilder>,
    /// Established links, for floods, in the order they came up.
    established: Vec<ConnId>,
    actions: VecDeque<Action>,
    close_linger: Duration,
}

impl Links {
    pub fn new(close_linger: Duration) -> Links {
        Links {
            conns: HashMap::with_hasher(ConnIdHashBuilder),
            established: Vec::new(),
            actions: VecDeque::new(),
            close_linger,
        }
    }

    pub fn get(&self, id: ConnId) -> Option<&Connection> {
        self.conns.get(&id).map(|c| &**c)
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.conns.get_mut(&id).map(|c| &mut **c)
    }

    pub fn contains(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    pub fn insert(&mut self, conn: Connection) {
        self.conns.insert(conn.id, Box::new(conn));
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.conns.values().map(|c| &**c)
    }

    pub fn ids(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    /// Established links, in the order they came up.
    pub fn established(&self) -> &[ConnId] {
        &self.established
    }

    pub fn is_established(&self, id: ConnId) -> bool {
        self.get(id).is_some_and(Connection::is_established)
    }

    /// The handshake of `id` completed.
    pub fn mark_established(&mut self, id: ConnId, now: Instant) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.phase = Phase::Established;
            conn.established_at = Some(now);
            conn.last_received = now;
            if conn.deflate_out {
                conn.start_deflate_out();
            }
            conn.start_stream();
            self.established.push(id);
        }
    }

    pub fn push_action(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn event(&mut self, event: CoreEvent) {
        self.actions.push_back(Action::Event(event));
    }

    /// Output is waiting on `id`: tell the event loop once.
    pub fn want_write(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.write_signalled {
                conn.write_signalled = true;
                self.actions.push_back(Action::WantWrite(id));
            }
        }
    }

    /// Queues a descriptor for `to` (established links only), applying the
    /// drop policy; a neighbour that cannot drain what must not be lost is
    /// closed.
    pub fn enqueue(&mut self, to: ConnId, class: Class, frame: Frame) -> Queued {
        let Some(conn) = self.conns.get_mut(&to) else {
            return Queued::NoLink;
        };
        if !conn.is_established() {
            return Queued::NoLink;
        }
        let dropped = conn.enqueue(class, frame);
        if conn.queue.overflowed() {
            // It cannot drain QueryHits/Pushes: nothing more will reach it.
            self.close_now(to, "send queue overflow");
            return Queued::Overflowed(dropped);
        }
        if !conn.write_signalled {
            conn.write_signalled = true;
            self.actions.push_back(Action::WantWrite(to));
        }
        Queued::Yes(dropped)
    }

    /// Queues `frame` on every established link but `except`; calls
    /// `counted` with what each attempt did.
    pub fn flood(
        &mut self,
        except: Option<ConnId>,
        class: Class,
        frame: &Frame,
        mut counted: impl FnMut(ConnId, Queued),
    ) {
        let mut i = 0;
        // Bounded by the number of established links; a closed one leaves the list.
        while let Some(&to) = self.established.get(i) {
            if Some(to) != except {
                counted(to, self.enqueue(to, class, Frame::clone(frame)));
            }
            if self.established.get(i) == Some(&to) {
                i += 1;
            }
        }
    }

    /// Sends `bye` (an encoded Bye descriptor) as the last thing on `id`,
    /// then closes once it drained (or the linger ends). `reason` is what the
    /// user is told.
    pub fn send_last(&mut self, id: ConnId, bye: Frame, reason: String, now: Instant) {
        let linger = self.close_linger;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.queue.clear();
        conn.enqueue(Class::Keep, bye);
        conn.phase = Phase::Closing {
            deadline: now + linger,
        };
        conn.write_signalled = false;
        let addr = conn.peer;
        self.established.retain(|c| *c != id);
        self.event(CoreEvent::PeerDown { id, addr, reason });
        self.want_write(id);
    }

    /// Writes `block` (a refusal or a declining status) raw on `id`, then
    /// closes once it drained; the user is told `reason`.
    pub fn refuse_with(&mut self, id: ConnId, block: &[u8], reason: String, now: Instant) {
        let linger = self.close_linger;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.write_raw(block);
        conn.phase = Phase::Closing {
            deadline: now + linger,
        };
        conn.write_signalled = false;
        let addr = conn.peer;
        self.established.retain(|c| *c != id);
        self.event(CoreEvent::PeerDown { id, addr, reason });
        self.want_write(id);
    }

    /// Tells the event loop to close `id` now and forgets it.
    pub fn close_now(&mut self, id: ConnId, reason: &str) -> Option<Connection> {
        if !self.conns.contains_key(&id) {
            return None;
        }
        self.actions.push_back(Action::Close(id));
        self.remove(id, reason)
    }

    /// Forgets `id` (the socket is gone); the user hears why unless a Bye or
    /// refusal already said it.
    pub fn remove(&mut self, id: ConnId, reason: &str) -> Option<Connection> {
        let conn = self.conns.remove(&id)?;
        self.established.retain(|c| *c != id);
        if !conn.is_closing() {
            self.event(CoreEvent::PeerDown {
                id,
                addr: conn.peer,
                reason: reason.to_string(),
            });
        }
        Some(*conn)
    }

    /// Bytes waiting to be written on `id` (empty when none).
    pub fn output(&mut self, id: ConnId) -> &[u8] {
        match self.conns.get_mut(&id) {
            Some(conn) => {
                if !conn.has_output() {
                    conn.write_signalled = false;
                }
                conn.output()
            }
            None => &[],
        }
    }

    /// `n` bytes of [`Links::output`] were written; a closing link whose
    /// output drained is closed (and returned).
    pub fn consume_output(&mut self, id: ConnId, n: usize, now: Instant) -> Option<Connection> {
        let conn = self.conns.get_mut(&id)?;
        conn.consume_output(n, now);
        if conn.has_output() {
            return None;
        }
        conn.write_signalled = false;
        if conn.is_closing() {
            return self.close_now(id, "closed after flush");
        }
        None
    }
}
