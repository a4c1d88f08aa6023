//! Napster: one index server that every node logs in to and shares its file
//! list with; a search is one request to the server and its answers. The
//! index and its search are `hazel_index::index::Index` (what `hazel-index`
//! runs); request and answers are sized by the OpenNap encoders.

use std::net::Ipv4Addr;
use std::time::Duration;

use hazel_index::index::{Index, UserId};
use hazel_protocol::napster::search::SearchQuery;
use hazel_protocol::napster::{encode_frame, SharedFile, HEADER_LEN};
use rand::rngs::StdRng;

use super::sim::{Architecture, Background, QueryOutcome, Scenario};
use super::workload::{QuerySpec, Workload};

/// Results a server sends per search at most (`hazel-index`'s default).
pub const MAX_RESULTS: usize = 100;
/// The OpenNap message ending a search's results.
const SEARCH_END: u16 = 202;

/// The server's id in latency lookups.
const SERVER: u32 = u32::MAX;

pub struct Napster {
    index: Index,
    users: Vec<Option<UserId>>,
    /// Each node's files, to share again on rejoining.
    files: Vec<Vec<SharedFile>>,
    /// Messages the server handled since measuring started.
    server_load: u64,
    /// Messages each client handled.
    client_load: Vec<u64>,
    seed: u64,
    latency_ms: (u64, u64),
}

fn nick(node: u32) -> String {
    format!("node{node}")
}

impl Napster {
    pub fn new(scenario: &Scenario, workload: &Workload, _rng: &mut StdRng) -> Napster {
        let files = workload
            .per_node
            .iter()
            .map(|held| {
                held.iter()
                    .map(|&f| {
                        let spec = &workload.files[f as usize];
                        SharedFile {
                            name: spec.name.as_bytes().to_vec(),
                            md5: format!("{:032x}", super::splitmix64(u64::from(f))).into_bytes(),
                            size: spec.size,
                            bitrate: 128,
                            freq: 44100,
                            duration: 180,
                        }
                    })
                    .collect()
            })
            .collect();
        let mut napster = Napster {
            index: Index::new(),
            users: vec![None; workload.per_node.len()],
            files,
            server_load: 0,
            client_load: vec![0; workload.per_node.len()],
            seed: scenario.seed,
            latency_ms: (scenario.latency_ms, scenario.jitter_ms),
        };
        for node in 0..workload.per_node.len() as u32 {
            napster.login(node);
        }
        napster
    }

    /// Logs `node` in and shares its files; the messages that took (login,
    /// its acknowledgement, one per file).
    fn login(&mut self, node: u32) -> u64 {
        let ip = Ipv4Addr::from(0x0a00_0000 | node);
        let user = self.index.add_user(&nick(node), ip, 6);
        for file in &self.files[node as usize] {
            self.index
                .add_file(user, file)
                .expect("the lab's file names are valid");
        }
        self.users[node as usize] = Some(user);
        2 + self.files[node as usize].len() as u64
    }

    /// The files `node` shares.
    pub fn shared_files(&self, node: u32) -> &[SharedFile] {
        &self.files[node as usize]
    }

    /// The round trip between a node and the server.
    fn round_trip(&self, node: u32) -> Duration {
        let (base, jitter) = self.latency_ms;
        Duration::from_millis(2 * super::pair_latency_ms(self.seed, node, SERVER, base, jitter))
    }
}

impl Architecture for Napster {
    fn leave(&mut self, node: u32) -> Background {
        // A closed connection: the server logs the user out.
        if let Some(user) = self.users[node as usize].take() {
            self.index.remove_user(user);
        }
        Background::default()
    }

    fn join(&mut self, node: u32, _rng: &mut StdRng) -> Background {
        let messages = self.login(node);
        self.server_load += messages;
        self.client_load[node as usize] += messages;
        Background {
            ping_pong: 0,
            other: messages,
            bytes: 0,
        }
    }

    fn query(&mut self, query: &QuerySpec, workload: &Workload) -> QueryOutcome {
        let keyword = &workload.files[query.file as usize].keyword;
        let request = SearchQuery::simple(keyword.as_bytes(), MAX_RESULTS as u32);
        let mut payload = Vec::new();
        request
            .encode_payload(&mut payload)
            .expect("a short search encodes");
        let searcher = self.users[query.origin as usize];
        let results = self.index.search(&request, searcher, MAX_RESULTS);
        let mut answers = Vec::new();
        for &id in &results {
            if let Some(file) = self.index.file(id) {
                file.encode_search_result(&mut answers)
                    .expect("an indexed file encodes");
            }
        }
        encode_frame(SEARCH_END, &[], &mut answers).expect("an empty frame encodes");
        let messages = 1 + results.len() as u64 + 1;
        self.server_load += messages;
        self.client_load[query.origin as usize] += messages;
        let found = !results.is_empty();
        QueryOutcome {
            messages,
            query_messages: 1,
            bytes: (HEADER_LEN + payload.len() + answers.len()) as u64,
            reached: 1,
            duplicates: 0,
            found,
            hops: found.then_some(1),
            latency: found.then(|| self.round_trip(query.origin)),
        }
    }

    fn start_measuring(&mut self) {
        self.server_load = 0;
        self.client_load.iter_mut().for_each(|l| *l = 0);
    }

    fn busiest_load(&mut self) -> u64 {
        let busiest_client = self.client_load.iter().copied().max().unwrap_or(0);
        self.server_load.max(busiest_client)
    }

    /// The server holds the index; a client holds one connection.
    fn state_bytes(&self) -> (f64, u64) {
        let server = self.index.memory_use().total() as u64;
        let nodes = self.users.len() as f64 + 1.0;
        (server as f64 / nodes, server)
    }
}
