//! A connection's bounded send queue with the priority drop policy
//! (PROTOCOL-NOTES §2, flow control).
//!
//! Descriptors wait here until the socket drains; only then are they moved
//! into the connection's byte buffer. When the queued bytes exceed the soft
//! limit the least valuable descriptors go first: Pings, then Queries (the
//! one that travelled most hops first), then Pongs. QueryHits, Pushes and
//! Byes are never dropped; if they alone exceed the hard limit the neighbour
//! cannot keep up and the caller disconnects it.

use std::collections::VecDeque;
use std::sync::Arc;

/// One whole descriptor (header and payload), shared between the queues of
/// every neighbour it is forwarded to.
pub type Frame = Arc<[u8]>;

/// How valuable a queued descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// QueryHit, Push, Bye: never dropped.
    Keep,
    Pong,
    /// A Query with its hop count (after our increment).
    Query {
        hops: u8,
    },
    Ping,
    /// Anything else we send (unknown to the policy, e.g. future types).
    Other,
}

const QUERY_HOP_CLASSES: usize = 16;

/// What pushing a frame did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub pings: u32,
    pub queries: u32,
    pub pongs: u32,
    pub others: u32,
}

impl Dropped {
    pub fn total(&self) -> u32 {
        self.pings + self.queries + self.pongs + self.others
    }
}

pub struct SendQueue {
    keep: VecDeque<Frame>,
    pongs: VecDeque<Frame>,
    queries: [VecDeque<Frame>; QUERY_HOP_CLASSES],
    pings: VecDeque<Frame>,
    others: VecDeque<Frame>,
    bytes: usize,
    frames: usize,
    soft_limit: usize,
    hard_limit: usize,
}

impl SendQueue {
    /// `soft_limit`: bytes above which droppable descriptors are dropped;
    /// `hard_limit`: bytes of undroppable descriptors that mean "disconnect".
    pub fn new(soft_limit: usize, hard_limit: usize) -> SendQueue {
        SendQueue {
            keep: VecDeque::new(),
            pongs: VecDeque::new(),
            queries: Default::default(),
            pings: VecDeque::new(),
            others: VecDeque::new(),
            bytes: 0,
            frames: 0,
            soft_limit,
            hard_limit: hard_limit.max(soft_limit),
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Queues `frame`, then drops the least valuable descriptors while over
    /// the soft limit. Returns what was dropped (possibly `frame` itself).
    pub fn push(&mut self, class: Class, frame: Frame) -> Dropped {
        self.bytes += frame.len();
        self.frames += 1;
        match class {
            Class::Keep => self.keep.push_back(frame),
            Class::Pong => self.pongs.push_back(frame),
            Class::Query { hops } => {
                let slot = usize::from(hops).min(QUERY_HOP_CLASSES - 1);
                self.queries[slot].push_back(frame)
            }
            Class::Ping => self.pings.push_back(frame),
            Class::Other => self.others.push_back(frame),
        }
        let mut dropped = Dropped::default();
        while self.bytes > self.soft_limit {
            // The oldest of the least valuable class goes first.
            let victim = if let Some(f) = self.pings.pop_front() {
                dropped.pings += 1;
                f
            } else if let Some(f) = self.others.pop_front() {
                dropped.others += 1;
                f
            } else if let Some(f) = self.queries.iter_mut().rev().find_map(|q| q.pop_front()) {
                dropped.queries += 1;
                f
            } else if let Some(f) = self.pongs.pop_front() {
                dropped.pongs += 1;
                f
            } else {
                break;
            };
            self.bytes -= victim.len();
            self.frames -= 1;
        }
        dropped
    }

    /// True when undroppable descriptors alone exceed the hard limit: the
    /// neighbour cannot drain what must not be lost.
    pub fn overflowed(&self) -> bool {
        self.bytes > self.hard_limit
    }

    /// The next descriptor to send: QueryHits/Push/Bye, then Pongs, then
    /// Queries (fewest hops first), then Pings.
    pub fn pop(&mut self) -> Option<Frame> {
        let frame = self
            .keep
            .pop_front()
            .or_else(|| self.pongs.pop_front())
            .or_else(|| self.queries.iter_mut().find_map(|q| q.pop_front()))
            .or_else(|| self.pings.pop_front())
            .or_else(|| self.others.pop_front())?;
        self.bytes -= frame.len();
        self.frames -= 1;
        Some(frame)
    }

    /// Forgets everything queued (after a Bye, nothing more is sent).
    pub fn clear(&mut self) {
        *self = SendQueue::new(self.soft_limit, self.hard_limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, len: usize) -> Frame {
        let mut v = vec![0u8; len];
        v[0] = tag;
        v.into()
    }

    #[test]
    fn pings_are_dropped_before_queries_and_queries_before_pongs() {
        let mut q = SendQueue::new(300, 1000);
        assert_eq!(q.push(Class::Pong, frame(1, 100)).total(), 0);
        assert_eq!(q.push(Class::Query { hops: 1 }, frame(2, 100)).total(), 0);
        assert_eq!(q.push(Class::Ping, frame(3, 100)).total(), 0);
        // Over the limit: the Ping goes.
        let d = q.push(Class::Query { hops: 2 }, frame(4, 100));
        assert_eq!(d.pings, 1);
        // Again: the Query with more hops goes (the one just added, hops 2).
        let d = q.push(Class::Query { hops: 1 }, frame(5, 100));
        assert_eq!(d.queries, 1);
        let mut tags = vec![];
        while let Some(f) = q.pop() {
            tags.push(f[0]);
        }
        assert_eq!(
            tags,
            vec![1, 2, 5],
            "pong first, then hops-1 queries in order"
        );
    }

    #[test]
    fn pongs_go_only_when_no_ping_or_query_is_left() {
        let mut q = SendQueue::new(200, 1000);
        q.push(Class::Pong, frame(1, 100));
        q.push(Class::Pong, frame(2, 100));
        let d = q.push(Class::Keep, frame(3, 100));
        assert_eq!(d.pongs, 1);
        assert_eq!(q.pop().map(|f| f[0]), Some(3));
        assert_eq!(q.pop().map(|f| f[0]), Some(2));
    }

    #[test]
    fn query_hits_are_never_dropped_and_overflow_is_reported() {
        let mut q = SendQueue::new(200, 400);
        for n in 0..4 {
            assert_eq!(q.push(Class::Keep, frame(n, 100)).total(), 0);
            assert!(!q.overflowed());
        }
        q.push(Class::Keep, frame(9, 100));
        assert!(q.overflowed());
        assert_eq!(q.len(), 5);
        assert_eq!(q.bytes(), 500);
    }

    #[test]
    fn a_ping_pushed_into_a_queue_full_of_hits_is_dropped_itself() {
        let mut q = SendQueue::new(200, 1000);
        q.push(Class::Keep, frame(1, 100));
        q.push(Class::Keep, frame(2, 100));
        let d = q.push(Class::Ping, frame(3, 50));
        assert_eq!(d.pings, 1);
        assert_eq!(q.len(), 2);
    }
}
