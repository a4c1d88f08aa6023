//! What the user does to an index download: retry, pause, resume,
//! cancel, and its row in `transfers`.

use std::time::Instant;

use super::State;
use crate::core::transfers::{DiskJob, DownloadId, DownloadInfo};
use crate::core::{Action, Core};

impl Core {
    /// `retry` of a failed Napster download: asks again, from the bytes it has.
    pub(in crate::core) fn napster_retry(
        &mut self,
        id: DownloadId,
        now: Instant,
    ) -> Result<(), String> {
        self.ask_again(id, |s| matches!(s, State::Failed(_)), "has not failed", now)
    }

    /// Asks the index again for download `id`, from the bytes on the disk,
    /// if its state is `ready` (else the error says it `is_not`).
    fn ask_again(
        &mut self,
        id: DownloadId,
        ready: impl Fn(&State) -> bool,
        is_not: &str,
        now: Instant,
    ) -> Result<(), String> {
        let d = self
            .napster
            .downloads
            .get(id)
            .ok_or(format!("no download {id}"))?;
        if !ready(&d.state) {
            return Err(format!("download {id} {is_not}"));
        }
        // What the disk has is what we resume from.
        d.received = d.written;
        d.peer = None;
        self.ask_index(id, now)
    }

    /// `pause` of a Napster download: the transfer stops; what is on the
    /// disk stays for `resume`.
    pub(in crate::core) fn napster_pause(&mut self, id: DownloadId) -> Result<(), String> {
        let d = self
            .napster
            .downloads
            .get(id)
            .ok_or(format!("no download {id}"))?;
        if d.state.is_over() || matches!(d.state, State::Finishing | State::Paused) {
            return Err(format!("download {id} is {}", d.state.name()));
        }
        d.state = State::Paused;
        d.unsaved = true;
        d.next_source = false;
        d.head.clear();
        d.out.clear();
        if let Some(conn) = d.conn.take() {
            self.links.push_action(Action::Close(conn));
        }
        self.uncount(id);
        Ok(())
    }

    /// `resume` of a paused Napster download: asks the index again, from
    /// the bytes on the disk.
    pub(in crate::core) fn napster_resume(
        &mut self,
        id: DownloadId,
        now: Instant,
    ) -> Result<(), String> {
        self.ask_again(
            id,
            |s| matches!(s, State::Paused | State::Waiting),
            "is not paused",
            now,
        )
    }

    /// `cancel` of a Napster download.
    pub(in crate::core) fn napster_cancel(&mut self, id: DownloadId) -> Result<(), String> {
        let d = self
            .napster
            .downloads
            .get(id)
            .ok_or(format!("no download {id}"))?;
        if let State::Done(_) = d.state {
            return Err(format!("download {id} is complete"));
        }
        d.others.clear();
        d.next_source = false;
        self.fail_napster(id, "cancelled".into());
        self.links
            .push_action(Action::Disk(DiskJob::Remove { download: id }));
        self.napster.downloads.list.retain(|d| d.id != id);
        Ok(())
    }

    /// Rows of `transfers` for the Napster downloads.
    pub(in crate::core) fn napster_download_rows(&self, now: Instant) -> Vec<DownloadInfo> {
        self.napster
            .downloads
            .list
            .iter()
            .map(|d| DownloadInfo {
                id: d.id,
                name: d.name.clone(),
                urn: String::new(),
                size: Some(d.size),
                done: d.written.min(d.size),
                rate: d.rate(now) as u64,
                eta_secs: Some(d.rate(now))
                    .filter(|r| *r > 0.0)
                    .map(|r| (d.size.saturating_sub(d.written) as f64 / r) as u64),
                sources_active: usize::from(d.conn.is_some()),
                sources_known: 1 + d.others.len(),
                state: d.state.name(),
                verification: "size",
                last_error: d.last_error.clone(),
                path: match &d.state {
                    State::Done(path) => Some(path.clone()),
                    _ => None,
                },
                sources: Vec::new(),
            })
            .collect()
    }
}
