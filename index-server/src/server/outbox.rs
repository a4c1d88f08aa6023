//! What one call into the server produces: frames to write (consecutive
//! frames to one connection share a buffer, so all results of a search
//! leave in one write), connections to close, and work for the reactor's
//! worker threads (password jobs, store writes).

use hazel_protocol::napster::ServerMessage;
use log::warn;

use super::jobs::{PasswordJob, StoreWrite};
use crate::session::ConnId;

/// Frames to write, connections to close and work to hand out, produced by
/// one call.
#[derive(Debug, Default)]
pub struct Outbox {
    frames: Vec<(ConnId, Vec<u8>)>,
    close: Vec<ConnId>,
    jobs: Vec<PasswordJob>,
    writes: Vec<StoreWrite>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// The buffer for `to`: consecutive frames to one connection share a
    /// buffer, so a search's results leave in one write.
    pub fn buffer(&mut self, to: ConnId) -> &mut Vec<u8> {
        if self.frames.last().map(|(id, _)| *id) != Some(to) {
            self.frames.push((to, Vec::with_capacity(256)));
        }
        let last = self.frames.len() - 1;
        &mut self.frames[last].1
    }

    /// Queues one typed message for `to`.
    pub fn message(&mut self, to: ConnId, message: &ServerMessage) {
        if let Err(e) = message.encode(self.buffer(to)) {
            warn!("cannot encode {} for {to:?}: {e}", message.kind());
        }
    }

    /// Asks for `id` to be closed once what is queued for it is written.
    pub fn close(&mut self, id: ConnId) {
        if !self.close.contains(&id) {
            self.close.push(id);
        }
    }

    /// Takes the queued frames (by connection) and closes.
    pub fn take(&mut self) -> (Vec<(ConnId, Vec<u8>)>, Vec<ConnId>) {
        (
            std::mem::take(&mut self.frames),
            std::mem::take(&mut self.close),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
            && self.close.is_empty()
            && self.jobs.is_empty()
            && self.writes.is_empty()
    }

    /// Queues slow password work (see [`PasswordJob`]).
    pub fn job(&mut self, job: PasswordJob) {
        self.jobs.push(job);
    }

    /// Takes the queued password jobs.
    pub fn take_jobs(&mut self) -> Vec<PasswordJob> {
        std::mem::take(&mut self.jobs)
    }

    /// Queues a change to the accounts or bans (see [`StoreWrite`]).
    pub fn write(&mut self, write: StoreWrite) {
        self.writes.push(write);
    }

    /// Takes the queued store writes.
    pub fn take_writes(&mut self) -> Vec<StoreWrite> {
        std::mem::take(&mut self.writes)
    }

    /// Connections asked to be closed so far.
    pub fn closing(&self) -> &[ConnId] {
        &self.close
    }
}
