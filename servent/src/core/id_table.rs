//! Bounded memory of recently seen 16-byte ids (descriptor ids, servent ids):
//! [`SeenIds`] for duplicate suppression (Push), [`RouteTable`] for duplicate
//! suppression plus reverse paths (which link delivered a Ping or a Query,
//! which link a servent id's QueryHits came from), both on one [`IdTable`]. Memory must stay bounded under a flood of unique
//! ids, yet an entry must survive long enough to catch late duplicates, so the
//! table keeps two generations: new ids go into the current one; the previous
//! one is only read. When the current one is full or older than
//! `generation_age`, the previous one is cleared and becomes current. An entry
//! therefore lives at least `generation_age` unless a flood fills a whole
//! generation sooner, and the table is allocated once, up front.
//!
//! Layout: one open-addressing array (linear probing, at most half full per
//! generation) whose buckets hold one slot of each generation side by side,
//! so checking both generations costs one cache miss, not two — this lookup
//! is the hot path of routing. A slot stores a 64-bit keyed fingerprint of
//! the id rather than the id: two live ids share a fingerprint with
//! probability about n / 2^64 per lookup (≈ 10^-14 for a full table), which
//! at worst drops one descriptor as a duplicate.

use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use super::ids::Origin;

/// A 16-byte id as two words: 8-byte alignment keeps map entries small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdKey(u64, u64);

impl IdKey {
    pub fn new(bytes: &[u8; 16]) -> IdKey {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&bytes[..8]);
        hi.copy_from_slice(&bytes[8..]);
        IdKey(u64::from_le_bytes(lo), u64::from_le_bytes(hi))
    }
}

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
        state.write_u64(self.1);
    }
}

/// Keyed folded-multiply hasher: ids are random on the wire, so one multiply
/// per word is enough, and the per-table random key keeps a peer from
/// choosing ids that all land in one bucket.
#[derive(Clone, Copy)]
pub struct IdHashBuilder {
    k0: u64,
    k1: u64,
}

impl IdHashBuilder {
    pub fn new(seed: u64) -> IdHashBuilder {
        // Split the seed into two odd-ish keys that differ everywhere.
        let k0 = seed ^ 0x243f_6a88_85a3_08d3;
        let k1 = seed.rotate_left(29) ^ 0x1319_8a2e_0370_7344;
        IdHashBuilder { k0, k1 }
    }
}

pub struct IdHasher {
    state: u64,
    k1: u64,
}

fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.state
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.state = fold(self.state ^ x, self.k1 | 1);
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            state: self.k0,
            k1: self.k1,
        }
    }
}

/// One bucket: `[fingerprint, value]` of the first generation, then of the
/// second; a fingerprint of 0 marks an empty slot. Plain words so the table
/// is allocated zeroed (pages the OS hands over lazily) rather than written.
type Bucket = [u64; 4];

/// Two generations of ids with a u64 value each (see the module doc).
pub struct IdTable {
    buckets: Vec<Bucket>,
    mask: usize,
    /// Which half of each bucket is the current generation.
    current: usize,
    len: [usize; 2],
    capacity: usize,
    hasher: IdHashBuilder,
    generation_age: Duration,
    generation_started: Instant,
    rotations: u64,
}

impl IdTable {
    /// `capacity` entries per generation (at least 1), each generation
    /// retired after `generation_age`.
    pub fn new(capacity: usize, generation_age: Duration, seed: u64, now: Instant) -> Self {
        let capacity = capacity.max(1);
        // At most half full per generation keeps probe runs short.
        let buckets = (capacity * 2).next_power_of_two();
        IdTable {
            buckets: vec![[0u64; 4]; buckets],
            mask: buckets - 1,
            current: 0,
            len: [0; 2],
            capacity,
            hasher: IdHashBuilder::new(seed),
            generation_age,
            generation_started: now,
            rotations: 0,
        }
    }

    fn fingerprint(&self, id: &[u8; 16]) -> u64 {
        // 0 marks an empty slot.
        self.hasher.hash_one(IdKey::new(id)).max(1)
    }

    /// Where `fingerprint` is (Ok) or would go (Err) in `generation`.
    fn probe(&self, generation: usize, fingerprint: u64) -> Result<usize, usize> {
        let mut i = (fingerprint as usize) & self.mask;
        let word = generation * 2;
        // Bounded by the table size; a generation is never more than half
        // full, so an empty slot ends the run long before.
        for _ in 0..self.buckets.len() {
            let stored = self.buckets.get(i).map_or(0, |b| b[word]);
            if stored == fingerprint {
                return Ok(i);
            }
            if stored == 0 {
                return Err(i);
            }
            i = (i + 1) & self.mask;
        }
        Err(i)
    }

    fn find(&self, generation: usize, fingerprint: u64) -> Option<u64> {
        let at = self.probe(generation, fingerprint).ok()?;
        self.buckets.get(at).map(|b| b[generation * 2 + 1])
    }

    fn store(&mut self, at: usize, generation: usize, fingerprint: u64, value: u64) {
        if let Some(bucket) = self.buckets.get_mut(at) {
            bucket[generation * 2] = fingerprint;
            bucket[generation * 2 + 1] = value;
        }
    }

    /// The value remembered for `id`, if it is still remembered (the
    /// current generation's value wins).
    pub fn get(&self, id: &[u8; 16]) -> Option<u64> {
        let fp = self.fingerprint(id);
        self.find(self.current, fp)
            .or_else(|| self.find(1 - self.current, fp))
    }

    fn is_due(&self, now: Instant) -> bool {
        self.len[self.current] >= self.capacity
            || now.saturating_duration_since(self.generation_started) >= self.generation_age
    }

    /// Remembers `id` unless it already is; returns true when it was new.
    pub fn insert_new(&mut self, id: &[u8; 16], value: u64, now: Instant) -> bool {
        let fp = self.fingerprint(id);
        if self.find(1 - self.current, fp).is_some() {
            return false;
        }
        let mut at = match self.probe(self.current, fp) {
            Ok(_) => return false,
            Err(at) => at,
        };
        if self.is_due(now) {
            self.rotate_if_due(now);
            // The old current generation is now the previous one: it was
            // checked above, so the id is new; find its place again.
            match self.probe(self.current, fp) {
                Ok(_) => return false,
                Err(slot) => at = slot,
            }
        }
        self.store(at, self.current, fp, value);
        self.len[self.current] += 1;
        true
    }

    /// Remembers `id` with `value`, replacing an older value (used for routes
    /// that should follow the most recent path, such as servent ids).
    pub fn upsert(&mut self, id: &[u8; 16], value: u64, now: Instant) {
        let fp = self.fingerprint(id);
        if self.is_due(now) {
            self.rotate_if_due(now);
        }
        match self.probe(self.current, fp) {
            Ok(at) => self.store(at, self.current, fp, value),
            Err(at) => {
                // A stale copy in the previous generation is shadowed by this one.
                self.store(at, self.current, fp, value);
                self.len[self.current] += 1;
            }
        }
    }

    /// Retires a generation when the current one is full or old. Also called
    /// from timers so that an idle table still forgets.
    pub fn rotate_if_due(&mut self, now: Instant) {
        if !self.is_due(now) {
            return;
        }
        let retired = 1 - self.current;
        for bucket in self.buckets.iter_mut() {
            bucket[retired * 2] = 0;
            bucket[retired * 2 + 1] = 0;
        }
        self.len[retired] = 0;
        self.current = retired;
        self.generation_started = now;
        self.rotations += 1;
    }

    /// Entries currently remembered (both generations).
    pub fn len(&self) -> usize {
        self.len[0] + self.len[1]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times a generation was retired.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Bytes held by the table.
    pub fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }
}

/// A remembered route's value in the table: `ConnId`s never reach this.
const US: u64 = u64::MAX;

fn encode(origin: Origin) -> u64 {
    match origin {
        Origin::Us => US,
        Origin::Link(id) => id,
    }
}

fn decode(value: u64) -> Origin {
    if value == US {
        Origin::Us
    } else {
        Origin::Link(value)
    }
}

/// Ids with where each came from: a duplicate check and a reverse path in one
/// lookup.
pub struct RouteTable(IdTable);

impl RouteTable {
    pub fn new(capacity: usize, generation_age: Duration, seed: u64, now: Instant) -> RouteTable {
        RouteTable(IdTable::new(capacity, generation_age, seed, now))
    }

    /// Where `id` came from, while it is remembered.
    pub fn get(&self, id: &[u8; 16]) -> Option<Origin> {
        self.0.get(id).map(decode)
    }

    /// Remembers `id` as coming from `origin` unless it is already known;
    /// true when it was new.
    pub fn insert_new(&mut self, id: &[u8; 16], origin: Origin, now: Instant) -> bool {
        self.0.insert_new(id, encode(origin), now)
    }

    /// Remembers `id` as coming from `origin`, replacing an older route.
    pub fn upsert(&mut self, id: &[u8; 16], origin: Origin, now: Instant) {
        self.0.upsert(id, encode(origin), now)
    }

    pub fn rotate_if_due(&mut self, now: Instant) {
        self.0.rotate_if_due(now)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }
}

/// Ids seen recently, for duplicate suppression only.
pub struct SeenIds(IdTable);

impl SeenIds {
    pub fn new(capacity: usize, generation_age: Duration, seed: u64, now: Instant) -> SeenIds {
        SeenIds(IdTable::new(capacity, generation_age, seed, now))
    }

    /// Records `id`; true when it was not seen before.
    pub fn insert_new(&mut self, id: &[u8; 16], now: Instant) -> bool {
        self.0.insert_new(id, 0, now)
    }

    pub fn rotate_if_due(&mut self, now: Instant) {
        self.0.rotate_if_due(now)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b[8] = 0xff;
        b
    }

    #[test]
    fn a_repeat_is_refused_and_its_value_kept() {
        let t0 = Instant::now();
        let mut table = IdTable::new(100, Duration::from_secs(600), 1, t0);
        assert!(table.insert_new(&id(1), 7, t0));
        assert!(!table.insert_new(&id(1), 8, t0));
        assert_eq!(table.get(&id(1)), Some(7));
        assert_eq!(table.get(&id(2)), None);
    }

    #[test]
    fn an_entry_survives_at_least_one_generation_age() {
        let t0 = Instant::now();
        let age = Duration::from_secs(600);
        let mut table = IdTable::new(100, age, 1, t0);
        table.insert_new(&id(1), 0, t0);
        // Just before the age and just after one rotation it is still there.
        let t1 = t0 + age - Duration::from_secs(1);
        assert!(table.insert_new(&id(2), 0, t1));
        assert!(!table.insert_new(&id(1), 0, t1), "still a duplicate");
        let t2 = t0 + age + Duration::from_secs(1);
        table.rotate_if_due(t2);
        assert!(
            table.get(&id(1)).is_some(),
            "kept in the previous generation"
        );
        // A second rotation forgets it.
        table.rotate_if_due(t2 + age);
        assert_eq!(table.get(&id(1)), None);
    }

    #[test]
    fn a_flood_of_unique_ids_never_grows_the_table() {
        let t0 = Instant::now();
        let mut table = IdTable::new(1000, Duration::from_secs(600), 9, t0);
        let before = table.memory_bytes();
        for n in 0..50_000u64 {
            assert!(table.insert_new(&id(n), 0, t0));
            assert!(table.len() <= 2000);
        }
        assert_eq!(table.memory_bytes(), before);
        assert!(table.rotations() >= 49);
        // The most recent ids are still remembered.
        assert!(!table.insert_new(&id(49_999), 0, t0));
    }

    #[test]
    fn routes_remember_us_apart_from_every_link() {
        let t0 = Instant::now();
        let mut routes = RouteTable::new(10, Duration::from_secs(600), 4, t0);
        assert!(routes.insert_new(&id(1), Origin::Us, t0));
        assert!(routes.insert_new(&id(2), Origin::Link(u64::MAX - 1), t0));
        assert!(!routes.insert_new(&id(2), Origin::Us, t0));
        assert_eq!(routes.get(&id(1)), Some(Origin::Us));
        assert_eq!(routes.get(&id(2)), Some(Origin::Link(u64::MAX - 1)));
        let mut seen = SeenIds::new(10, Duration::from_secs(600), 5, t0);
        assert!(seen.insert_new(&id(1), t0));
        assert!(!seen.insert_new(&id(1), t0));
    }

    #[test]
    fn upsert_moves_a_route_to_the_newest_value() {
        let t0 = Instant::now();
        let mut table = IdTable::new(10, Duration::from_secs(600), 3, t0);
        table.upsert(&id(5), 1, t0);
        table.upsert(&id(5), 2, t0);
        assert_eq!(table.get(&id(5)), Some(2));
        table.rotate_if_due(t0 + Duration::from_secs(601));
        table.upsert(&id(5), 3, t0 + Duration::from_secs(602));
        assert_eq!(table.get(&id(5)), Some(3));
        // The stale copy in the previous generation is shadowed, then forgotten.
        table.rotate_if_due(t0 + Duration::from_secs(1203));
        assert_eq!(table.get(&id(5)), Some(3));
        assert_eq!(table.len(), 1);
    }
}
