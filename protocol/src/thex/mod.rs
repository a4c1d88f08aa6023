//! Tiger tree hashes (THEX): a Merkle tree of Tiger digests over 1024-byte blocks, as
//! gtk-gnutella, Shareaza and LimeWire compute it, so a downloader can check every range it
//! fetches and name the source that corrupted one.
//!
//! # The tree
//! - The file is cut into 1024-byte blocks (the last one may be shorter; an empty file is one
//!   empty block). A leaf is `Tiger(0x00 ‖ block)`.
//! - Each row above pairs the row below from the left: `Tiger(0x01 ‖ left ‖ right)`; a node left
//!   without a sibling (odd count) moves up unchanged. The top row holds the root.
//! - Rows are numbered by *depth* from the root (depth 0). A node at depth `d` of a tree whose full
//!   depth is `D` covers `2^(D-d)` blocks, except the last node of its row, which covers what is
//!   left. Its hash is the tree root of exactly those bytes (the same rules applied to them alone),
//!   which is what makes [`TigerTree::verify`] possible.
//!
//! # What is kept
//! Nobody keeps all leaves: a 4 GiB file has four million. [`TreeHasher`] keeps the rows from the
//! root down to [`kept_depth`]: the deepest row whose nodes still cover at least 64 KiB
//! ([`MIN_UNIT`]), but never a row of more than 1024 nodes ([`MAX_UNITS`]); whichever gives fewer
//! nodes wins. Why these two numbers:
//! - 64 KiB is about what a downloader fetches per request anyway; a smaller unit would cost tree
//!   bytes and hashing for little gain, and a lying source then costs at most one unit re-fetched.
//! - 1024 nodes bound the tree at 2047 digests (48 KiB) whatever the file size, which keeps the
//!   DIME reply small (gtk-gnutella reads at most 256 KiB of THEX data) and the per-file memory of a
//!   downloader fixed. gtk-gnutella's own choice is similar (its `tt_good_depth` keeps at most
//!   2048 nodes and at least 128 KiB per node); a peer that sends a deeper or shallower tree is
//!   still accepted by [`TigerTree::decode_dime`], keeping whatever rows it sent.
//!
//! # API
//! - [`TreeHasher`]: streaming, bounded memory (`O(log n)` pending digests plus at most 2048 kept
//!   ones): `update(&[u8])` any number of times, then `finish() -> TigerTree`.
//! - [`TigerTree`]: the file size, the [`root`](TigerTree::root), the kept rows
//!   ([`levels`](TigerTree::levels), root first), [`depth`](TigerTree::depth), the byte span of
//!   any node, and verification of the deepest row's nodes ("units"): [`TigerTree::unit`],
//!   [`TigerTree::unit_count`], [`TigerTree::span`], [`TigerTree::unit_of`],
//!   [`TigerTree::verify`], and the streaming [`NodeHasher`] from [`TigerTree::node_hasher`].
//! - [`root_of`]: the root of a byte slice; [`leaf_hash`], [`node_hash`], [`parents`]: the
//!   primitives.
//! - [`dime`]: the THEX serialization exchanged over HTTP (`/uri-res/N2X?…`, `application/dime`):
//!   [`TigerTree::encode_dime`] and the total decoder [`TigerTree::decode_dime`], which checks
//!   the tree against the root and file size the caller already trusts.
//! - [`ThexUri`]: the `X-Thex-URI` header value (`/uri-res/N2X?urn:sha1:…;<root>`).
//!
//! # How a downloader verifies a range
//! 1. Learn the root it trusts (a hit's `urn:bitprint:`, GGEP `TT`, or the `X-Thex-URI` of the
//!    source) and fetch the tree (`GET /uri-res/N2X?urn:sha1:…`); `TigerTree::decode_dime(body,
//!    &root, size)` rejects a tree that does not hash up to that root.
//! 2. Schedule ranges on unit boundaries: unit `i` is `tree.span(i)`; `tree.unit_of(offset)`
//!    finds the unit of a byte.
//! 3. When a unit's bytes are all in, check them: `tree.verify(i, &bytes)`, or feed them as they
//!    arrive to `tree.node_hasher(i)` and call `finish()`. `false` means the source that sent
//!    (part of) that unit sent wrong bytes: discard the unit and fetch it elsewhere.

pub mod dime;

use std::fmt;
use std::ops::Range;

use data_encoding::BASE32_NOPAD;
use tiger::{Digest, Tiger};

use crate::huge::{Sha1Digest, TigerDigest};

pub use dime::ThexError;

/// Bytes per leaf block.
pub const BLOCK_SIZE: u64 = 1024;
/// Bytes of a Tiger digest.
pub const DIGEST_LEN: usize = 24;
/// The smallest span a node of the deepest kept row covers (unless the whole file is smaller).
pub const MIN_UNIT: u64 = 64 * 1024;
/// The most nodes the deepest kept row may have.
pub const MAX_UNITS: u64 = 1024;

/// Which rows a [`TreeHasher`] keeps: the deepest kept row has nodes of at least
/// `2^min_unit_height` blocks and at most `2^max_units_depth` nodes. Only tests use another
/// policy than [`Policy::DEFAULT`] (small numbers exercise the same code on small inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Policy {
    min_unit_height: u32,
    max_units_depth: u32,
}

impl Policy {
    /// 64 KiB units, at most 1024 of them.
    const DEFAULT: Policy = Policy {
        min_unit_height: MIN_UNIT.ilog2() - BLOCK_SIZE.ilog2(),
        max_units_depth: MAX_UNITS.ilog2(),
    };

    fn kept_depth(self, size: u64) -> u32 {
        full_depth(size)
            .saturating_sub(self.min_unit_height)
            .min(self.max_units_depth)
    }

    /// The kept row is replaced by the row above when it reaches this many nodes.
    fn max_kept(self) -> usize {
        2usize << self.max_units_depth
    }
}

/// `Tiger(0x00 ‖ block)`.
pub fn leaf_hash(block: &[u8]) -> TigerDigest {
    let mut h = Tiger::new();
    h.update([0x00]);
    h.update(block);
    h.finalize().into()
}

/// `Tiger(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &TigerDigest, right: &TigerDigest) -> TigerDigest {
    let mut h = Tiger::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The row above `row`: pairs hashed from the left, an odd last node moved up unchanged.
pub fn parents(row: &[TigerDigest]) -> Vec<TigerDigest> {
    row.chunks(2)
        .map(|pair| match pair {
            [left, right] => node_hash(left, right),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// Number of leaf blocks of a file of `size` bytes (an empty file has one, empty).
pub fn block_count(size: u64) -> u64 {
    size.div_ceil(BLOCK_SIZE).max(1)
}

/// Depth of the leaf row of a file of `size` bytes: the number of rows above the leaves.
pub fn full_depth(size: u64) -> u32 {
    let blocks = block_count(size);
    // ceil(log2(blocks)); blocks >= 1.
    u64::BITS - (blocks - 1).leading_zeros()
}

/// Nodes in the row at `depth` (root = 0) of a file of `size` bytes; `None` below the leaves.
pub fn row_len(size: u64, depth: u32) -> Option<u64> {
    let height = full_depth(size).checked_sub(depth)?;
    Some(ceil_shift(block_count(size), height))
}

/// The deepest row [`TreeHasher`] keeps for a file of `size` bytes (see the module doc): nodes of
/// at least [`MIN_UNIT`] bytes, at most [`MAX_UNITS`] of them.
pub fn kept_depth(size: u64) -> u32 {
    Policy::DEFAULT.kept_depth(size)
}

/// `ceil(n / 2^shift)` without overflow.
fn ceil_shift(n: u64, shift: u32) -> u64 {
    if shift >= u64::BITS {
        return u64::from(n > 0);
    }
    let q = n >> shift;
    if n & ((1u64 << shift) - 1) != 0 {
        q + 1
    } else {
        q
    }
}

/// Bytes covered by each node at `depth` of a file of `size` bytes (the last one may cover less);
/// saturates for absurd depths.
fn node_bytes(size: u64, depth: u32) -> u64 {
    let height = full_depth(size).saturating_sub(depth);
    BLOCK_SIZE.checked_shl(height).unwrap_or(u64::MAX)
}

/// The tree root of `data` (the whole content of a file).
pub fn root_of(data: &[u8]) -> TigerDigest {
    let mut stack = RootStack::default();
    for block in data.chunks(BLOCK_SIZE as usize) {
        stack.push_leaf(leaf_hash(block), |_, _| {});
    }
    if data.is_empty() {
        stack.push_leaf(leaf_hash(&[]), |_, _| {});
    }
    stack.root()
}

/// Complete subtrees not yet paired, by strictly decreasing height: the binary decomposition of
/// the leaves seen so far. At most 64 entries whatever the input length.
#[derive(Debug, Clone, Default)]
struct RootStack {
    nodes: Vec<(u32, TigerDigest)>,
}

impl RootStack {
    /// Adds the next leaf and pairs what can be paired; `made(height, digest)` sees every
    /// complete node created (leaves included), in order.
    fn push_leaf(&mut self, leaf: TigerDigest, mut made: impl FnMut(u32, &TigerDigest)) {
        made(0, &leaf);
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.nodes.last() {
            if height != node.0 {
                break;
            }
            self.nodes.pop();
            node = (height + 1, node_hash(&left, &node.1));
            made(node.0, &node.1);
        }
        self.nodes.push(node);
    }

    /// The root of everything pushed (of one empty leaf if nothing was): the pending subtrees
    /// folded from the right, which is where the THEX rule moves odd nodes.
    fn root(&self) -> TigerDigest {
        self.fold_below(u32::MAX).unwrap_or_else(|| leaf_hash(&[]))
    }

    /// The fold of the pending subtrees lower than `height`: the last, incomplete node at that
    /// height. `None` when there are none.
    fn fold_below(&self, height: u32) -> Option<TigerDigest> {
        let mut acc: Option<TigerDigest> = None;
        for (_, digest) in self.nodes.iter().rev().take_while(|(h, _)| *h < height) {
            acc = Some(match acc {
                None => *digest,
                Some(right) => node_hash(digest, &right),
            });
        }
        acc
    }
}

/// Feeds bytes into 1024-byte leaves without copying whole blocks that arrive aligned.
#[derive(Debug, Clone)]
struct Blocks {
    partial: Box<[u8; BLOCK_SIZE as usize]>,
    filled: usize,
    total: u64,
}

impl Default for Blocks {
    fn default() -> Self {
        Blocks {
            partial: Box::new([0; BLOCK_SIZE as usize]),
            filled: 0,
            total: 0,
        }
    }
}

impl Blocks {
    /// Calls `leaf` with the hash of every block completed by `data`.
    fn update(&mut self, mut data: &[u8], mut leaf: impl FnMut(TigerDigest)) {
        self.total = self.total.saturating_add(data.len() as u64);
        const B: usize = BLOCK_SIZE as usize;
        if self.filled > 0 {
            let take = (B - self.filled).min(data.len());
            let (head, rest) = data.split_at(take);
            self.partial[self.filled..self.filled + take].copy_from_slice(head);
            self.filled += take;
            data = rest;
            if self.filled < B {
                return;
            }
            leaf(leaf_hash(&self.partial[..]));
            self.filled = 0;
        }
        let mut blocks = data.chunks_exact(B);
        for block in &mut blocks {
            leaf(leaf_hash(block));
        }
        let rest = blocks.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// The hash of the last, short block, if the input ends inside one or is empty. A block of
    /// exactly 1024 bytes at the end was hashed by `update` already.
    fn last_leaf(&self) -> Option<TigerDigest> {
        (self.filled > 0 || self.total == 0).then(|| leaf_hash(&self.partial[..self.filled]))
    }
}

/// Computes a file's [`TigerTree`] from its bytes, fed in any pieces, in bounded memory: the
/// pending subtrees (at most 64 digests) plus the row being kept (at most 2048 digests), whatever
/// the file size, and one 1024-byte block buffer.
///
/// The file size need not be known in advance: the hasher keeps the row of 64 KiB nodes, and
/// whenever that row reaches 2048 nodes it replaces it with the row above (so it keeps 128 KiB
/// nodes, and so on); [`TreeHasher::finish`] then moves up to [`kept_depth`] of the final size.
#[derive(Debug, Clone)]
pub struct TreeHasher {
    policy: Policy,
    blocks: Blocks,
    stack: RootStack,
    /// Height (rows above the leaves) of the nodes in `kept`.
    kept_height: u32,
    kept: Vec<TigerDigest>,
}

impl Default for TreeHasher {
    fn default() -> Self {
        TreeHasher::new()
    }
}

impl TreeHasher {
    pub fn new() -> Self {
        TreeHasher::with_policy(Policy::DEFAULT)
    }

    fn with_policy(policy: Policy) -> Self {
        TreeHasher {
            policy,
            blocks: Blocks::default(),
            stack: RootStack::default(),
            kept_height: policy.min_unit_height,
            kept: Vec::new(),
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.blocks.total
    }

    /// True before any byte was fed.
    pub fn is_empty(&self) -> bool {
        self.blocks.total == 0
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        let max_kept = self.policy.max_kept();
        let (stack, kept, kept_height) = (&mut self.stack, &mut self.kept, &mut self.kept_height);
        self.blocks.update(data, |leaf| {
            push_kept_leaf(stack, kept, kept_height, max_kept, leaf)
        });
    }

    /// The tree of everything fed, with the rows down to [`kept_depth`] of its length.
    pub fn finish(mut self) -> TigerTree {
        if let Some(leaf) = self.blocks.last_leaf() {
            let max_kept = self.policy.max_kept();
            let (stack, kept, kept_height) =
                (&mut self.stack, &mut self.kept, &mut self.kept_height);
            push_kept_leaf(stack, kept, kept_height, max_kept, leaf);
        }
        let size = self.blocks.total;
        let root = self.stack.root();
        let full = full_depth(size);
        let target_height = full - self.policy.kept_depth(size);
        let mut row = self.kept;
        let mut height = self.kept_height;
        if let Some(tail) = self.stack.fold_below(height) {
            row.push(tail);
        }
        if height > full || row.is_empty() {
            // The file is smaller than one kept node: the root is all there is to keep.
            row = vec![root];
            height = full;
        }
        // (`height > target_height` cannot happen: the kept row only moves up while it has more
        // than 1024 nodes, and then the final kept row is higher still.)
        while height < target_height {
            row = parents(&row);
            height += 1;
        }
        let mut levels = vec![row];
        while levels.last().is_some_and(|r| r.len() > 1) {
            let above = parents(levels.last().map_or(&[][..], Vec::as_slice));
            levels.push(above);
        }
        levels.reverse();
        debug_assert_eq!(levels.first().and_then(|r| r.first()), Some(&root));
        TigerTree {
            file_size: size,
            levels,
        }
    }
}

/// Pushes a leaf and records the complete nodes of the kept height; when the kept row reaches
/// `max_kept` (2048) nodes it becomes the row above (1024 nodes), so memory stays bounded.
fn push_kept_leaf(
    stack: &mut RootStack,
    kept: &mut Vec<TigerDigest>,
    kept_height: &mut u32,
    max_kept: usize,
    leaf: TigerDigest,
) {
    stack.push_leaf(leaf, |height, digest| {
        if height != *kept_height {
            return;
        }
        if kept.len() == max_kept {
            // `digest` is the first node of a new pair; its parent is recorded when made.
            *kept = parents(kept);
            *kept_height += 1;
        } else {
            kept.push(*digest);
        }
    });
}

/// The root of some bytes, fed in pieces: [`root_of`] without holding them.
#[derive(Debug, Clone, Default)]
pub struct RootHasher {
    blocks: Blocks,
    stack: RootStack,
}

impl RootHasher {
    pub fn new() -> Self {
        RootHasher::default()
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.blocks.total
    }

    /// True before any byte was fed.
    pub fn is_empty(&self) -> bool {
        self.blocks.total == 0
    }

    pub fn update(&mut self, data: &[u8]) {
        let stack = &mut self.stack;
        self.blocks
            .update(data, |leaf| stack.push_leaf(leaf, |_, _| {}));
    }

    /// The tree root of the bytes fed.
    pub fn finish(mut self) -> TigerDigest {
        if let Some(leaf) = self.blocks.last_leaf() {
            self.stack.push_leaf(leaf, |_, _| {});
        }
        self.stack.root()
    }
}

/// A file's Tiger tree: its size and the rows kept, from the root down.
///
/// Invariants (held by every constructor): at least one row; row `d` has exactly
/// [`row_len`]`(file_size, d)` nodes; each row is the [`parents`] of the row below it.
#[derive(Clone, PartialEq, Eq)]
pub struct TigerTree {
    file_size: u64,
    levels: Vec<Vec<TigerDigest>>,
}

impl fmt::Debug for TigerTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TigerTree")
            .field("file_size", &self.file_size)
            .field("root", &tiger_base32(&self.root()))
            .field("depth", &self.depth())
            .field("units", &self.unit_count())
            .finish()
    }
}

impl TigerTree {
    /// Builds a tree from rows (root first), checking the invariants: row lengths for this
    /// file size, every row the parents of the one below.
    pub fn from_levels(file_size: u64, levels: Vec<Vec<TigerDigest>>) -> Result<Self, ThexError> {
        if levels.is_empty() {
            return Err(ThexError::TreeLength);
        }
        for (depth, row) in levels.iter().enumerate() {
            let depth = u32::try_from(depth).map_err(|_| ThexError::TreeLength)?;
            if row_len(file_size, depth) != Some(row.len() as u64) {
                return Err(ThexError::TreeLength);
            }
        }
        for (depth, pair) in levels.windows(2).enumerate() {
            if let [above, below] = pair {
                if parents(below) != *above {
                    return Err(ThexError::Inconsistent { depth: depth + 1 });
                }
            }
        }
        Ok(TigerTree { file_size, levels })
    }

    /// The tree of a whole byte slice (tests, small files).
    pub fn of(data: &[u8]) -> Self {
        let mut hasher = TreeHasher::new();
        hasher.update(data);
        hasher.finish()
    }

    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    pub fn root(&self) -> TigerDigest {
        // The invariants guarantee a root row of one node.
        self.levels
            .first()
            .and_then(|row| row.first())
            .copied()
            .unwrap_or_default()
    }

    /// The kept rows, root first.
    pub fn levels(&self) -> &[Vec<TigerDigest>] {
        &self.levels
    }

    /// Depth of the deepest kept row (0 when only the root is kept). This is the `depth` the
    /// THEX description announces, as gtk-gnutella counts it.
    pub fn depth(&self) -> u32 {
        u32::try_from(self.levels.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// The deepest kept row: the units a downloader verifies.
    pub fn units(&self) -> &[TigerDigest] {
        self.levels.last().map_or(&[][..], Vec::as_slice)
    }

    /// Number of units (nodes of the deepest kept row).
    pub fn unit_count(&self) -> usize {
        self.units().len()
    }

    /// Bytes covered by each unit except the last (which covers what is left, maybe fewer).
    pub fn unit(&self) -> u64 {
        node_bytes(self.file_size, self.depth())
    }

    /// The bytes unit `index` covers; `None` past the last unit. An empty file has one unit,
    /// `0..0`.
    pub fn span(&self, index: usize) -> Option<Range<u64>> {
        self.span_at(self.depth(), index)
    }

    /// The bytes node `index` of the row at `depth` covers (`depth` need not be kept).
    pub fn span_at(&self, depth: u32, index: usize) -> Option<Range<u64>> {
        let count = row_len(self.file_size, depth)?;
        let index = u64::try_from(index).ok()?;
        if index >= count {
            return None;
        }
        let per = node_bytes(self.file_size, depth);
        let start = index.saturating_mul(per);
        let end = start.saturating_add(per).min(self.file_size);
        Some(start..end)
    }

    /// The unit holding byte `offset`; `None` at or past the end of the file.
    pub fn unit_of(&self, offset: u64) -> Option<usize> {
        if offset >= self.file_size {
            return None;
        }
        usize::try_from(offset / self.unit()).ok()
    }

    /// Whether `data` is exactly the content of unit `index`: the right length, hashing to the
    /// unit's digest. Hashes `data` once.
    pub fn verify(&self, index: usize, data: &[u8]) -> bool {
        match self.node_hasher(index) {
            Some(mut hasher) => {
                hasher.update(data);
                hasher.finish()
            }
            None => false,
        }
    }

    /// A hasher that checks unit `index` from its bytes fed in order, without holding them;
    /// `None` past the last unit.
    pub fn node_hasher(&self, index: usize) -> Option<NodeHasher> {
        let span = self.span(index)?;
        let expected = *self.units().get(index)?;
        Some(NodeHasher {
            expected,
            len: span.end - span.start,
            hasher: RootHasher::new(),
        })
    }

    /// The same tree keeping only the rows down to `depth` (no change if it keeps fewer).
    pub fn truncated(&self, depth: u32) -> TigerTree {
        let keep = usize::try_from(depth)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        TigerTree {
            file_size: self.file_size,
            levels: self.levels.iter().take(keep).cloned().collect(),
        }
    }

    /// Every kept node, breadth-first from the root: the THEX tree record.
    pub fn breadth_first(&self) -> impl Iterator<Item = &TigerDigest> {
        self.levels.iter().flatten()
    }

    /// Number of kept nodes.
    pub fn node_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }
}

/// Checks one unit of a [`TigerTree`] from its bytes fed in order (see
/// [`TigerTree::node_hasher`]).
#[derive(Debug, Clone)]
pub struct NodeHasher {
    expected: TigerDigest,
    len: u64,
    hasher: RootHasher,
}

impl NodeHasher {
    /// The number of bytes the unit has.
    pub fn expected_len(&self) -> u64 {
        self.len
    }

    /// Bytes fed so far.
    pub fn fed(&self) -> u64 {
        self.hasher.len()
    }

    /// Feeds the unit's next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// True when exactly the unit's length was fed and it hashes to the unit's digest.
    pub fn finish(self) -> bool {
        self.hasher.len() == self.len && self.hasher.finish() == self.expected
    }
}

/// The 39-character base32 of a Tiger digest (as in `urn:bitprint:` and `X-Thex-URI`).
pub fn tiger_base32(digest: &TigerDigest) -> String {
    BASE32_NOPAD.encode(digest)
}

/// Reads 39 base32 characters (any case) as a Tiger digest.
pub fn parse_tiger_base32(text: &[u8]) -> Option<TigerDigest> {
    if text.len() != 39 {
        return None;
    }
    let upper = text.to_ascii_uppercase();
    BASE32_NOPAD.decode(&upper).ok()?.try_into().ok()
}

/// An `X-Thex-URI` header value: `<uri>;<root base32>`. gtk-gnutella sends
/// `/uri-res/N2X?urn:sha1:<SHA-1>;<root>`; Shareaza sends its own `/gnutella/thex/v1?…` uri, also
/// followed by `;<root>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThexUri {
    /// Where to `GET` the tree (an absolute path on the same server).
    pub uri: Vec<u8>,
    /// The root the server claims, when the value carries one that decodes.
    pub root: Option<TigerDigest>,
}

impl ThexUri {
    /// The value Hazel (like gtk-gnutella) sends for a file with this SHA-1 and root.
    pub fn for_file(sha1: &Sha1Digest, root: &TigerDigest) -> ThexUri {
        ThexUri {
            uri: n2x_target(sha1).into_bytes(),
            root: Some(*root),
        }
    }

    /// Reads a header value; `None` when there is no uri starting with `/`.
    pub fn parse(value: &[u8]) -> Option<ThexUri> {
        let value = value.trim_ascii();
        // A value whose last `;` is not followed by a root is an opaque uri (gtk-gnutella reads
        // it the same way).
        let split = value.iter().rposition(|&b| b == b';').and_then(|semi| {
            let root = parse_tiger_base32(value[semi + 1..].trim_ascii())?;
            Some((value[..semi].trim_ascii(), Some(root)))
        });
        let (uri, root) = split.unwrap_or((value, None));
        if !uri.starts_with(b"/") || uri.iter().any(|&b| b <= b' ' || b == 0x7f) {
            return None;
        }
        Some(ThexUri {
            uri: uri.to_vec(),
            root,
        })
    }

    /// The header value.
    pub fn to_value(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.uri).into_owned();
        if let Some(root) = &self.root {
            out.push(';');
            out.push_str(&tiger_base32(root));
        }
        out
    }
}

/// `/uri-res/N2X?urn:sha1:<SHA-1 base32>`: where a servent serves the tree of a file.
pub fn n2x_target(sha1: &Sha1Digest) -> String {
    format!("/uri-res/N2X?{}", crate::huge::sha1_urn(sha1))
}

#[cfg(test)]
mod tests;
