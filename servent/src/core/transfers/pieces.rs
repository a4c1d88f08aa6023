//! Which parts of a download are where: the file is cut into fixed-size
//! chunks, each missing, being fetched (by how many connections: the last
//! ones may be fetched twice to finish fast), received (handed to the disk,
//! not yet proven), or verified (its hash checked, or the whole file's).
//!
//! A connection asks for the next run of missing chunks; when it fails, the
//! chunks it held go back to missing, whatever it had half sent.

/// The state of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    Missing,
    /// Being fetched by this many connections (two in the endgame).
    Assigned(u8),
    /// Written to the disk, not yet proven good.
    Received,
    /// Proven good (a Tiger tree node, or the whole file's SHA-1).
    Verified,
}

/// A span of bytes `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl Span {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// The chunk map of one download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces {
    size: u64,
    chunk: u64,
    chunks: Vec<Chunk>,
}

impl Pieces {
    /// A file of `size` bytes in chunks of `chunk` bytes (the last may be short).
    pub fn new(size: u64, chunk: u64) -> Pieces {
        let chunk = chunk.max(1);
        let count = size.div_ceil(chunk) as usize;
        Pieces {
            size,
            chunk,
            chunks: vec![Chunk::Missing; count],
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn chunk_size(&self) -> u64 {
        self.chunk
    }

    pub fn count(&self) -> usize {
        self.chunks.len()
    }

    pub fn state(&self, index: usize) -> Option<Chunk> {
        self.chunks.get(index).copied()
    }

    /// The bytes of chunk `index`.
    pub fn span(&self, index: usize) -> Span {
        let start = index as u64 * self.chunk;
        Span {
            start: start.min(self.size),
            end: (start + self.chunk).min(self.size),
        }
    }

    /// The chunks a span touches (`first..end`).
    pub fn chunks_of(&self, span: Span) -> std::ops::Range<usize> {
        if span.is_empty() {
            return 0..0;
        }
        let first = (span.start / self.chunk) as usize;
        let end = span.end.div_ceil(self.chunk) as usize;
        first.min(self.chunks.len())..end.min(self.chunks.len())
    }

    /// Takes the next run of missing chunks (at most `max_chunks`), marking
    /// them assigned; `None` when nothing is missing.
    pub fn take_missing(&mut self, max_chunks: usize) -> Option<Span> {
        let first = self.chunks.iter().position(|c| *c == Chunk::Missing)?;
        let mut end = first;
        while end < self.chunks.len() && end - first < max_chunks.max(1) {
            if self.chunks[end] != Chunk::Missing {
                break;
            }
            self.chunks[end] = Chunk::Assigned(1);
            end += 1;
        }
        Some(Span {
            start: self.span(first).start,
            end: self.span(end - 1).end,
        })
    }

    /// Marks the missing chunks of `span` as being fetched (a request made
    /// before the chunk map existed).
    pub fn assign(&mut self, span: Span) {
        for i in self.chunks_of(span) {
            if self.chunks[i] == Chunk::Missing {
                self.chunks[i] = Chunk::Assigned(1);
            }
        }
    }

    /// Endgame: nothing is missing, so a free connection doubles a chunk that
    /// exactly one other connection is fetching (the first to finish wins).
    pub fn take_duplicate(&mut self) -> Option<Span> {
        if self.chunks.contains(&Chunk::Missing) {
            return None;
        }
        let index = self.chunks.iter().position(|c| *c == Chunk::Assigned(1))?;
        self.chunks[index] = Chunk::Assigned(2);
        Some(self.span(index))
    }

    /// A connection gave up `span` (failed, stalled, replaced): its chunks
    /// that are not in yet are missing again (or held by one fewer).
    pub fn release(&mut self, span: Span) {
        for i in self.chunks_of(span) {
            self.chunks[i] = match self.chunks[i] {
                Chunk::Assigned(n) if n > 1 => Chunk::Assigned(n - 1),
                Chunk::Assigned(_) => Chunk::Missing,
                other => other,
            };
        }
    }

    /// Chunk `index` arrived whole (written to the disk).
    pub fn received(&mut self, index: usize) {
        if let Some(c) = self.chunks.get_mut(index) {
            if *c != Chunk::Verified {
                *c = Chunk::Received;
            }
        }
    }

    pub fn verified(&mut self, index: usize) {
        if let Some(c) = self.chunks.get_mut(index) {
            *c = Chunk::Verified;
        }
    }

    /// Chunk `index` proved bad (or untrusted): fetch it again.
    pub fn discard(&mut self, index: usize) {
        if let Some(c) = self.chunks.get_mut(index) {
            if matches!(*c, Chunk::Received | Chunk::Verified) {
                *c = Chunk::Missing;
            }
        }
    }

    /// Every chunk that is received but not verified goes back to missing.
    pub fn discard_unverified(&mut self) {
        for c in &mut self.chunks {
            if *c == Chunk::Received {
                *c = Chunk::Missing;
            }
        }
    }

    /// Whether every chunk is in (received or verified).
    pub fn complete(&self) -> bool {
        self.chunks
            .iter()
            .all(|c| matches!(c, Chunk::Received | Chunk::Verified))
    }

    pub fn all_verified(&self) -> bool {
        self.chunks.iter().all(|c| *c == Chunk::Verified)
    }

    /// Bytes received or verified.
    pub fn done_bytes(&self) -> u64 {
        (0..self.chunks.len())
            .filter(|&i| matches!(self.chunks[i], Chunk::Received | Chunk::Verified))
            .map(|i| self.span(i).len())
            .sum()
    }

    /// Runs of chunks in `wanted` states, as spans (for saving).
    pub fn spans(&self, wanted: impl Fn(Chunk) -> bool) -> Vec<Span> {
        let mut out: Vec<Span> = Vec::new();
        for i in 0..self.chunks.len() {
            if !wanted(self.chunks[i]) {
                continue;
            }
            let span = self.span(i);
            match out.last_mut() {
                Some(last) if last.end == span.start => last.end = span.end,
                _ => out.push(span),
            }
        }
        out
    }

    /// Marks the chunks wholly inside `span` with `state` (for loading).
    pub fn mark(&mut self, span: Span, state: Chunk) {
        for i in self.chunks_of(span) {
            let whole = self.span(i);
            if whole.start >= span.start && whole.end <= span.end {
                self.chunks[i] = state;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_taken_in_order_and_never_overlap() {
        let mut p = Pieces::new(10_000, 1000);
        assert_eq!(p.count(), 10);
        let a = p.take_missing(3).unwrap();
        let b = p.take_missing(3).unwrap();
        assert_eq!((a.start, a.end, b.start, b.end), (0, 3000, 3000, 6000));
        p.release(a);
        assert_eq!(
            p.take_missing(2).unwrap(),
            Span {
                start: 0,
                end: 2000
            }
        );
        let rest = p.take_missing(100).unwrap();
        assert_eq!(
            rest,
            Span {
                start: 2000,
                end: 3000
            },
            "stops at an assigned chunk"
        );
        let last = p.take_missing(100).unwrap();
        assert_eq!(
            last,
            Span {
                start: 6000,
                end: 10_000
            }
        );
        assert_eq!(p.take_missing(1), None);
    }

    #[test]
    fn the_last_chunk_is_short_and_spans_merge() {
        let mut p = Pieces::new(2500, 1000);
        assert_eq!(
            p.span(2),
            Span {
                start: 2000,
                end: 2500
            }
        );
        for i in 0..3 {
            p.received(i);
        }
        assert!(p.complete());
        assert_eq!(p.done_bytes(), 2500);
        assert_eq!(
            p.spans(|c| c == Chunk::Received),
            vec![Span {
                start: 0,
                end: 2500
            }]
        );
        p.verified(1);
        assert_eq!(p.spans(|c| c == Chunk::Received).len(), 2);
        p.discard_unverified();
        assert_eq!(p.done_bytes(), 1000);
        assert!(!p.complete());
    }

    #[test]
    fn the_endgame_doubles_one_chunk_at_a_time() {
        let mut p = Pieces::new(3000, 1000);
        let a = p.take_missing(3).unwrap();
        assert_eq!(p.take_missing(1), None);
        let d = p.take_duplicate().unwrap();
        assert_eq!(
            d,
            Span {
                start: 0,
                end: 1000
            }
        );
        assert_eq!(p.state(0), Some(Chunk::Assigned(2)));
        p.release(d);
        assert_eq!(p.state(0), Some(Chunk::Assigned(1)));
        p.release(a);
        assert_eq!(p.take_duplicate(), None, "missing chunks come first");
    }

    #[test]
    fn loading_marks_whole_chunks_only() {
        let mut p = Pieces::new(5000, 1000);
        p.mark(
            Span {
                start: 500,
                end: 3000,
            },
            Chunk::Received,
        );
        assert_eq!(p.state(0), Some(Chunk::Missing));
        assert_eq!(p.state(1), Some(Chunk::Received));
        assert_eq!(p.state(2), Some(Chunk::Received));
        assert_eq!(p.state(3), Some(Chunk::Missing));
        let empty = Pieces::new(0, 1000);
        assert!(empty.complete() && empty.count() == 0);
    }
}
