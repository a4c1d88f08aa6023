//! Range-by-range Tiger tree verification, with the engine driven against
//! simulated sources (honest, lying about bytes, lying about the tree) and
//! a simulated disk that really hashes what was written.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hazel_protocol::thex::TigerTree;
use sha1::{Digest, Sha1};

use super::*;

const SIZE: usize = 4 * 1024 * 1024 + 1234;

fn content(seed: u8) -> Vec<u8> {
    let mut x = 0x1234_5678u32 ^ u32::from(seed);
    (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[derive(Clone)]
struct Peer {
    /// The bytes it serves.
    data: Vec<u8>,
    /// Flips a byte in every answer whose range starts at or after this.
    corrupt_from: Option<u64>,
    /// The THEX message it serves (none: 404).
    tree: Option<Vec<u8>>,
}

struct Sim {
    t: Transfers,
    now: Instant,
    image: Vec<u8>,
    peers: HashMap<SocketAddr, Peer>,
    conns: HashMap<ConnId, SocketAddr>,
    next_conn: ConnId,
    disk: Vec<DiskEvent>,
    unit_checks: usize,
    bad_units: usize,
    sha1_checks: Vec<bool>,
    finished: bool,
    tree_requests: usize,
}

impl Sim {
    fn new(truth: Vec<u8>, root: Option<[u8; 24]>, peers: Vec<(&str, Peer)>) -> Sim {
        let mut t = Transfers::new(TransfersConfig {
            sources_per_download: 2,
            ..TransfersConfig::default()
        });
        let sha1: [u8; 20] = Sha1::digest(&truth).into();
        let sources = peers
            .iter()
            .map(|(addr, _)| SourceSpec {
                addr: addr.parse().expect("addr"),
                servent_id: None,
                file_index: None,
                needs_push: false,
                origin: Origin::Search,
                proxies: Vec::new(),
            })
            .collect();
        let now = Instant::now();
        t.add(
            NewDownload {
                name: "tree.bin".into(),
                size: Some(truth.len() as u64),
                sha1,
                tiger: root,
                sources,
            },
            now,
        )
        .expect("added");
        Sim {
            t,
            now,
            image: vec![0; truth.len()],
            peers: peers
                .into_iter()
                .map(|(a, p)| (a.parse().expect("addr"), p))
                .collect(),
            conns: HashMap::new(),
            next_conn: 100,
            disk: Vec::new(),
            unit_checks: 0,
            bad_units: 0,
            sha1_checks: Vec::new(),
            finished: false,
            tree_requests: 0,
        }
    }

    /// Runs until the file is finished or `steps` rounds passed.
    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            if self.finished {
                return;
            }
            let mut idle = true;
            while let Some(action) = self.t.poll_action() {
                idle = false;
                self.act(action);
            }
            for event in std::mem::take(&mut self.disk) {
                idle = false;
                self.t.on_disk(event, self.now);
            }
            if idle {
                // Let backoffs expire.
                self.now += Duration::from_secs(30);
                self.t.tick(self.now);
            }
        }
    }

    fn act(&mut self, action: TransferAction) {
        match action {
            TransferAction::Connect(addr) => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.conns.insert(conn, addr);
                assert!(self.t.on_connected(conn, addr, self.now));
            }
            TransferAction::WantWrite(conn) => self.answer(conn),
            TransferAction::Close(conn) => {
                self.conns.remove(&conn);
            }
            TransferAction::Disk(job) => self.disk_job(job),
            _ => {}
        }
    }

    fn disk_job(&mut self, job: DiskJob) {
        match job {
            DiskJob::Write { offset, data, .. } => {
                let at = offset as usize;
                self.image[at..at + data.len()].copy_from_slice(&data);
                self.disk.push(DiskEvent::Written {
                    download: 1,
                    bytes: data.len(),
                });
            }
            DiskJob::CheckUnit {
                unit,
                generation,
                offset,
                len,
                tree,
                ..
            } => {
                let bytes = &self.image[offset as usize..(offset + len) as usize];
                let ok = tree.verify(unit, bytes);
                self.unit_checks += 1;
                if !ok {
                    self.bad_units += 1;
                }
                self.disk.push(DiskEvent::UnitChecked {
                    download: 1,
                    unit,
                    generation,
                    ok,
                });
            }
            DiskJob::Verify { sha1, .. } => {
                let ok = <[u8; 20]>::from(Sha1::digest(&self.image)) == sha1;
                self.sha1_checks.push(ok);
                self.disk.push(DiskEvent::Verified { download: 1, ok });
            }
            DiskJob::Finish { .. } => self.finished = true,
            _ => {}
        }
    }

    /// Reads the request written on `conn` and answers it as its peer would.
    fn answer(&mut self, conn: ConnId) {
        let request = String::from_utf8(self.t.output(conn).to_vec()).expect("text");
        let n = request.len();
        self.t.consume_output(conn, n);
        if request.is_empty() {
            return;
        }
        let Some(peer) = self
            .conns
            .get(&conn)
            .and_then(|a| self.peers.get(a))
            .cloned()
        else {
            return;
        };
        let mut reply = Vec::new();
        if request.starts_with("GET /uri-res/N2X?") {
            self.tree_requests += 1;
            match &peer.tree {
                Some(tree) => {
                    reply.extend_from_slice(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/dime\r\nContent-Length: {}\r\n\r\n",
                            tree.len()
                        )
                        .as_bytes(),
                    );
                    reply.extend_from_slice(tree);
                }
                None => {
                    reply.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                }
            }
        } else {
            let range = request
                .lines()
                .find_map(|l| l.strip_prefix("Range: bytes="))
                .expect("a range");
            let (a, b) = range.split_once('-').expect("a-b");
            let (a, b): (usize, usize) = (a.parse().expect("a"), b.parse().expect("b"));
            let mut body = peer.data[a..=b].to_vec();
            if peer.corrupt_from.is_some_and(|from| a as u64 >= from) {
                body[(b - a) / 2] ^= 0x55;
            }
            reply.extend_from_slice(
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{}\r\nContent-Length: {}\r\n\r\n",
                    peer.data.len(),
                    body.len()
                )
                .as_bytes(),
            );
            reply.extend_from_slice(&body);
        }
        self.t.on_bytes(conn, &reply, self.now);
    }

    fn info(&self) -> DownloadInfo {
        self.t.list(self.now).remove(0)
    }

    fn source_state(&self, addr: &str) -> &'static str {
        self.info()
            .sources
            .iter()
            .find(|s| s.addr.to_string() == addr)
            .map(|s| s.state)
            .expect("a source")
    }
}

#[test]
fn a_source_sending_wrong_bytes_is_caught_at_the_range_and_dropped() {
    let truth = content(1);
    let tree = TigerTree::of(&truth);
    let honest = Peer {
        data: truth.clone(),
        corrupt_from: None,
        tree: Some(tree.encode_dime()),
    };
    let liar = Peer {
        corrupt_from: Some(0),
        ..honest.clone()
    };
    let mut sim = Sim::new(
        truth.clone(),
        Some(tree.root()),
        vec![("10.0.0.1:6346", honest), ("10.0.0.2:6346", liar)],
    );
    sim.run(2_000);
    assert!(sim.finished, "{:?}", sim.info());
    assert!(sim.image == truth, "the file is the true one");
    assert!(sim.bad_units > 0, "the lie was caught by a unit check");
    assert_eq!(
        sim.sha1_checks,
        [true],
        "the whole file's SHA-1 was checked once and matched: nothing wrong reached the end"
    );
    assert_eq!(sim.source_state("10.0.0.2:6346"), "dropped");
    assert_ne!(sim.source_state("10.0.0.1:6346"), "dropped");
    assert_eq!(sim.info().verification, "tiger tree and sha1");
    assert!(sim.unit_checks >= tree.unit_count());
}

#[test]
fn without_a_tree_anywhere_the_sha1_alone_decides() {
    let truth = content(2);
    let tree = TigerTree::of(&truth);
    let honest = Peer {
        data: truth.clone(),
        corrupt_from: None,
        tree: None,
    };
    let mut sim = Sim::new(
        truth.clone(),
        Some(tree.root()),
        vec![("10.0.0.1:6346", honest.clone()), ("10.0.0.2:6346", honest)],
    );
    sim.run(2_000);
    assert!(sim.finished);
    assert!(sim.image == truth);
    assert_eq!(sim.unit_checks, 0);
    assert_eq!(sim.tree_requests, 2, "each source asked once");
    assert_eq!(sim.info().verification, "sha1, tiger tree wanted");
}

#[test]
fn a_tree_that_is_not_the_roots_is_refused() {
    let truth = content(3);
    let tree = TigerTree::of(&truth);
    // The source serves the tree of other content: it does not hash to the root.
    let other = TigerTree::of(&content(4));
    let peer = Peer {
        data: truth.clone(),
        corrupt_from: None,
        tree: Some(other.encode_dime()),
    };
    let mut sim = Sim::new(
        truth.clone(),
        Some(tree.root()),
        vec![("10.0.0.1:6346", peer)],
    );
    sim.run(2_000);
    assert!(sim.finished);
    assert_eq!(
        sim.unit_checks, 0,
        "a tree that fails the root is never used"
    );
}

#[test]
fn a_false_root_with_its_own_tree_is_set_aside_and_honest_sources_are_pardoned() {
    // A hit paired the true SHA-1 with the root of fake content, and its
    // sender serves that fake tree and the fake bytes.
    let truth = content(5);
    let fake = content(6);
    let fake_tree = TigerTree::of(&fake);
    let impostor = Peer {
        data: fake.clone(),
        corrupt_from: None,
        tree: Some(fake_tree.encode_dime()),
    };
    let honest = Peer {
        data: truth.clone(),
        corrupt_from: None,
        tree: Some(TigerTree::of(&truth).encode_dime()),
    };
    let mut sim = Sim::new(
        truth.clone(),
        Some(fake_tree.root()),
        vec![("10.0.0.9:6346", impostor), ("10.0.0.1:6346", honest)],
    );
    sim.run(5_000);
    assert!(sim.finished, "{:?}", sim.info());
    assert!(sim.image == truth, "the true file in the end");
    assert_ne!(
        sim.source_state("10.0.0.1:6346"),
        "dropped",
        "{:?}",
        sim.info()
    );
    assert_eq!(
        sim.source_state("10.0.0.9:6346"),
        "dropped",
        "{:?}",
        sim.info()
    );
    assert_eq!(sim.info().verification, "sha1 (tiger tree set aside)");
}

#[test]
fn chunks_verified_by_the_tree_are_kept_in_the_state_file() {
    let truth = content(7);
    let tree = TigerTree::of(&truth);
    let honest = Peer {
        data: truth.clone(),
        corrupt_from: None,
        tree: Some(tree.encode_dime()),
    };
    let mut sim = Sim::new(truth, Some(tree.root()), vec![("10.0.0.1:6346", honest)]);
    // Enough rounds for some units to be checked, not for the whole file.
    let mut record = None;
    for _ in 0..200 {
        sim.run(1);
        if let Some(d) = sim.t.downloads.get(&1) {
            let r = d.record();
            if !r.verified.is_empty() {
                record = Some(r);
                break;
            }
        }
    }
    let record = record.expect("some chunks verified by the tree before the end");
    assert_eq!(
        record.tiger.as_deref(),
        Some(data_encoding::BASE32_NOPAD.encode(&tree.root()).as_str())
    );
    let verified: u64 = record.verified.iter().map(|[a, b]| b - a).sum();
    assert!(verified > 0 && verified < SIZE as u64 + 1);
}

#[test]
fn without_a_tree_a_liar_among_several_is_found_by_fetching_its_parts_elsewhere() {
    let truth = content(8);
    let honest = Peer {
        data: truth.clone(),
        corrupt_from: None,
        tree: None,
    };
    let liar = Peer {
        corrupt_from: Some(0),
        ..honest.clone()
    };
    let mut sim = Sim::new(
        truth.clone(),
        None,
        vec![
            ("10.0.0.1:6346", honest.clone()),
            ("10.0.0.2:6346", liar),
            ("10.0.0.3:6346", honest),
        ],
    );
    sim.run(5_000);
    assert!(sim.finished, "{:?}", sim.info());
    assert!(sim.image == truth);
    assert_eq!(sim.tree_requests, 0, "no root, no tree asked for");
    assert_eq!(
        sim.source_state("10.0.0.2:6346"),
        "dropped",
        "{:?}",
        sim.info()
    );
    for honest in ["10.0.0.1:6346", "10.0.0.3:6346"] {
        assert_ne!(sim.source_state(honest), "dropped", "{:?}", sim.info());
    }
    assert!(
        sim.sha1_checks.len() >= 2 && sim.sha1_checks.last() == Some(&true),
        "{:?}",
        sim.sha1_checks
    );
}
