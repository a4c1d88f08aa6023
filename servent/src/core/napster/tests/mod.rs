//! The core's Napster client against a scripted OpenNap server: the
//! server's frames are built with the protocol crate, handed to the core as
//! bytes, and what the core writes back is decoded the same way. Odd but
//! real server behaviour: a 404 in the middle of a search, message numbers
//! nobody knows, a server closing during login, a refused login with its
//! reason; and real clients' conventions: a registered nick with its
//! password, TekNap's backslashed names, a full page of 100 results.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hazel_protocol::napster::{
    encode_frame, ClientMessage, NapsterFramer, SearchResult as Hit, ServerMessage,
};

use super::session::{Identity, BACKOFF_FIRST, GUEST_PASSWORD};
use super::IndexSearchOptions;
use crate::core::{Action, ConnId, Core, CoreConfig, CoreEvent};

mod download;

const SERVER: &str = "127.0.0.1:8888";
const CONN: ConnId = 77;

fn server() -> SocketAddr {
    SERVER.parse().unwrap()
}

fn identity(password: Option<&str>) -> Identity {
    Identity {
        nick: "hazeluser".into(),
        password: password.map(str::to_string),
        data_port: 6699,
        link_speed: 9,
    }
}

/// A core with one index session, connected (its socket is `CONN`).
struct Scripted {
    core: Core,
    now: Instant,
    framer: NapsterFramer,
    events: Vec<CoreEvent>,
    actions: Vec<Action>,
}

impl Scripted {
    fn start(password: Option<&str>) -> Scripted {
        let now = Instant::now();
        let config = CoreConfig::new([7; 16], "127.0.0.1:6346".parse().unwrap());
        let mut core = Core::new(config, now);
        core.index_connect(server(), identity(password), now)
            .unwrap();
        let mut s = Scripted {
            core,
            now,
            framer: NapsterFramer::new(65535),
            events: Vec::new(),
            actions: Vec::new(),
        };
        s.pump();
        assert!(s.took(|a| matches!(a, Action::ConnectIndex(a) if *a == server())));
        assert!(s.core.on_index_connected(CONN, server(), now));
        s
    }

    fn pump(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Event(e) => self.events.push(e),
                other => self.actions.push(other),
            }
        }
    }

    fn took(&mut self, f: impl Fn(&Action) -> bool) -> bool {
        let found = self.actions.iter().any(f);
        self.actions.clear();
        found
    }

    /// Everything the core wrote to the server since the last call.
    fn sent(&mut self) -> Vec<ClientMessage> {
        let bytes = self.core.output(CONN).to_vec();
        self.core.consume_output(CONN, bytes.len(), self.now);
        self.framer.push(&bytes);
        let mut out = Vec::new();
        while let Some(frame) = self.framer.next_frame().unwrap() {
            out.push(ClientMessage::from_frame(&frame).unwrap());
        }
        out
    }

    fn server_says(&mut self, message: &ServerMessage) {
        let bytes = message.to_bytes().unwrap();
        self.raw(&bytes);
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.core.on_bytes(CONN, bytes, self.now);
        self.pump();
    }

    fn notices(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CoreEvent::Notice(text) => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    fn status(&self) -> super::IndexStatus {
        self.core.index_status(self.now).remove(0)
    }

    /// Nick check → not registered → guest login → ack.
    fn log_in(&mut self) {
        assert!(matches!(self.sent()[..], [ClientMessage::NickCheck { .. }]));
        self.server_says(&ServerMessage::NickRegistered);
        assert!(matches!(self.sent()[..], [ClientMessage::Login(_)]));
        self.server_says(&ServerMessage::LoginAck {
            email: b"anon@hazel".to_vec(),
        });
        assert_eq!(self.status().state, "online");
        self.sent();
    }
}

fn hit(name: &str, nick: &str) -> ServerMessage {
    ServerMessage::SearchResult(Hit {
        name: name.as_bytes().to_vec(),
        md5: b"0123456789abcdef0123456789abcdef".to_vec(),
        size: 4_000_000,
        bitrate: 192,
        freq: 44100,
        duration: 166,
        nick: nick.to_string(),
        ip: Ipv4Addr::new(127, 0, 0, 1),
        link_speed: 7,
        weight: None,
    })
}

#[test]
fn a_free_nick_is_registered_with_the_password_and_the_motd_and_stats_are_kept() {
    let mut s = Scripted::start(Some("s3cret"));
    assert_eq!(
        s.sent(),
        vec![ClientMessage::NickCheck {
            nick: "hazeluser".into()
        }]
    );
    s.server_says(&ServerMessage::NickNotRegistered);
    let ClientMessage::NewUserLogin(login) = &s.sent()[0] else {
        panic!("no new-user login");
    };
    assert_eq!(
        (login.nick.as_str(), login.password.as_slice(), login.port),
        ("hazeluser", b"s3cret".as_slice(), 6699)
    );
    s.server_says(&ServerMessage::LoginAck {
        email: b"anon@hazel".to_vec(),
    });
    assert_eq!(s.sent(), vec![ClientMessage::StatsRequest]);
    s.server_says(&ServerMessage::Motd {
        line: b"welcome\x1b[2J".to_vec(),
    });
    s.server_says(&ServerMessage::Stats(
        hazel_protocol::napster::ServerStats {
            users: 12,
            files: 3400,
            gigabytes: 9,
        },
    ));
    let status = s.status();
    assert_eq!(status.state, "online");
    assert_eq!((status.users, status.files), (Some(12), Some(3400)));
    // The escape sequence is shown, not obeyed.
    assert_eq!(status.motd, vec!["welcome\\e[2J".to_string()]);
    assert!(s
        .notices()
        .iter()
        .any(|n| n.contains("logged in as hazeluser (nick registered)")));
}

#[test]
fn a_registered_nick_logs_in_with_its_password() {
    let mut s = Scripted::start(Some("pw"));
    s.sent();
    s.server_says(&ServerMessage::NickRegistered);
    let ClientMessage::Login(login) = &s.sent()[0] else {
        panic!("no login");
    };
    assert_eq!(login.password, b"pw");
    assert_eq!(login.client_info, super::session::CLIENT_INFO);
}

#[test]
fn a_guest_sends_a_password_all_the_same() {
    let mut s = Scripted::start(None);
    s.sent();
    s.server_says(&ServerMessage::NickNotRegistered);
    let ClientMessage::Login(login) = &s.sent()[0] else {
        panic!("a guest logs in with 2, not 6");
    };
    assert_eq!(login.password, GUEST_PASSWORD.as_bytes());
}

#[test]
fn a_refused_login_shows_the_reason_and_is_not_retried() {
    let mut s = Scripted::start(Some("wrong"));
    s.sent();
    s.server_says(&ServerMessage::NickRegistered);
    s.sent();
    s.server_says(&ServerMessage::Error {
        message: b"Invalid password".to_vec(),
    });
    // Hazel hangs up itself, whether the server closes or not.
    assert!(s.took(|a| matches!(a, Action::Close(CONN))));
    s.core.on_closed(CONN, s.now);
    s.pump();
    let status = s.status();
    assert_eq!(status.state, "refused");
    assert_eq!(
        status.last_error.as_deref(),
        Some("login refused: Invalid password")
    );
    assert!(s
        .notices()
        .iter()
        .any(|n| n.contains("login refused: Invalid password")));
    // Much later: still no new connection.
    s.core.handle_timeout(s.now + Duration::from_secs(600));
    s.pump();
    assert!(!s.took(|a| matches!(a, Action::ConnectIndex(_))));
}

#[test]
fn a_server_closing_during_login_is_dialled_again_after_a_backoff() {
    let mut s = Scripted::start(None);
    s.sent();
    s.core.on_closed(CONN, s.now);
    s.pump();
    let status = s.status();
    assert_eq!(status.state, "reconnecting");
    assert!(s
        .notices()
        .iter()
        .any(|n| n.contains("session lost while logging in") && n.contains("reconnecting in")));
    // Not before the backoff, then once.
    s.core.handle_timeout(s.now + Duration::from_millis(10));
    s.pump();
    assert!(!s.took(|a| matches!(a, Action::ConnectIndex(_))));
    s.core
        .handle_timeout(s.now + BACKOFF_FIRST + Duration::from_secs(2));
    s.pump();
    assert!(s.took(|a| matches!(a, Action::ConnectIndex(a) if *a == server())));
}

#[test]
fn a_login_without_an_answer_times_out() {
    let mut s = Scripted::start(None);
    s.sent();
    s.core
        .handle_timeout(s.now + super::session::LOGIN_TIMEOUT + Duration::from_secs(2));
    s.pump();
    assert!(s.took(|a| matches!(a, Action::Close(CONN))));
    assert_eq!(s.status().state, "reconnecting");
    assert!(s
        .notices()
        .iter()
        .any(|n| n.contains("no answer to the login")));
}

#[test]
fn a_404_in_the_middle_of_a_search_and_unknown_numbers_do_not_end_anything() {
    let mut s = Scripted::start(None);
    s.log_in();
    let id = s.core.start_index_only_search("blue train");
    assert_eq!(
        s.core
            .index_search(id, "blue train", &IndexSearchOptions::default(), s.now),
        1
    );
    assert!(matches!(s.sent()[..], [ClientMessage::Search(_)]));
    s.server_says(&hit("coltrane - blue train.mp3", "lefty"));
    for _ in 0..3 {
        s.server_says(&ServerMessage::ErrorMessage {
            message: b"search limit reached".to_vec(),
        });
    }
    // A number nobody knows, and a known one with a payload we cannot read.
    let mut odd = Vec::new();
    encode_frame(9999, b"whatever 1 2 3", &mut odd).unwrap();
    encode_frame(214, b"not numbers", &mut odd).unwrap();
    s.raw(&odd);
    s.server_says(&hit("coltrane - blue train (live).mp3", "righty"));
    s.server_says(&ServerMessage::SearchEnd);
    // After the 202, a late 201 has no search to join.
    s.server_says(&hit("stray.mp3", "nobody"));

    let results = s.core.results(Some(id));
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "coltrane - blue train.mp3",
            "coltrane - blue train (live).mp3"
        ]
    );
    let first = &results[0];
    assert_eq!(first.origin, format!("index:{SERVER}"));
    let napster = first.napster.as_ref().unwrap();
    assert_eq!(
        (
            napster.bitrate,
            napster.frequency,
            napster.length,
            napster.link_speed
        ),
        (192, 44100, 166, 7)
    );
    assert_eq!(napster.nick, "lefty");
    let status = s.status();
    assert_eq!(status.state, "online");
    assert_eq!(status.traffic.skipped, 2);
    // Said once, then counted.
    assert_eq!(
        s.notices()
            .iter()
            .filter(|n| n.contains("server: search limit reached"))
            .count(),
        1
    );
    assert_eq!(status.traffic.repeated_errors, 2);
}

#[test]
fn a_full_page_of_100_results_and_teknap_backslashes_are_kept_whole() {
    let mut s = Scripted::start(None);
    s.log_in();
    let options = IndexSearchOptions {
        max_results: Some(100),
        min_bitrate: Some(128),
        exclude: vec!["live".into()],
    };
    let id = s.core.start_index_only_search("mix");
    s.core.index_search(id, "mix", &options, s.now);
    let ClientMessage::Search(query) = &s.sent()[0] else {
        panic!("no search");
    };
    let mut payload = Vec::new();
    query.encode_payload(&mut payload).unwrap();
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        "FILENAME CONTAINS \"mix\" MAX_RESULTS 100 FILENAME EXCLUDES \"live\" \
         BITRATE \"AT LEAST\" \"128\""
    );
    let mut page = Vec::new();
    for i in 0..100 {
        let name = format!("C:\\My Music\\mixes\\mix {i:03}.mp3");
        page.extend(hit(&name, "teknapper").to_bytes().unwrap());
    }
    page.extend(ServerMessage::SearchEnd.to_bytes().unwrap());
    s.raw(&page);
    let results = s.core.results(Some(id));
    assert_eq!(results.len(), 100);
    assert_eq!(results[99].name, "C:\\My Music\\mixes\\mix 099.mp3");
    assert_eq!(
        results[99].napster.as_ref().unwrap().raw_name,
        b"C:\\My Music\\mixes\\mix 099.mp3"
    );
}

#[test]
fn server_pings_are_answered_with_the_nick_and_user_pings_with_a_pong() {
    let mut s = Scripted::start(None);
    s.log_in();
    s.server_says(&ServerMessage::ServerPing { args: Vec::new() });
    s.server_says(&ServerMessage::PingUser { nick: "op".into() });
    assert_eq!(
        s.sent(),
        vec![
            ClientMessage::ServerPing {
                args: b"hazeluser".to_vec()
            },
            ClientMessage::PongUser { nick: "op".into() }
        ]
    );
}

#[test]
fn an_upload_request_is_accepted_for_a_shared_file_and_refused_otherwise() {
    let mut s = Scripted::start(None);
    s.log_in();
    s.core.set_index_shares(vec![super::IndexShare {
        index: 3,
        name: b"jazz\\tune.mp3".to_vec(),
        md5: "0123456789abcdef0123456789abcdef".into(),
        size: 1000,
        bitrate: 128,
        frequency: 44100,
        length: 60,
    }]);
    let shared = s.sent();
    assert!(matches!(&shared[..], [ClientMessage::Share(f)] if f.name == b"jazz\\tune.mp3"));
    let ask = |name: &str| {
        ServerMessage::UploadRequest(hazel_protocol::napster::UploadRequest {
            file: hazel_protocol::napster::UserFile {
                nick: "fan".into(),
                name: name.as_bytes().to_vec(),
            },
            link_speed: Some(3),
        })
    };
    s.server_says(&ask("jazz\\tune.mp3"));
    s.server_says(&ask("..\\..\\etc\\passwd"));
    let answers = s.sent();
    assert!(matches!(&answers[0], ClientMessage::UploadAccept(f) if f.nick == "fan"));
    assert!(matches!(&answers[1], ClientMessage::QueueLimit(q) if q.limit == 0));
    // The accepted upload may begin once, for that nick only.
    assert_eq!(
        s.core.index_upload_accepted(b"other", b"jazz\\tune.mp3"),
        None
    );
    assert_eq!(
        s.core.index_upload_accepted(b"fan", b"jazz\\tune.mp3"),
        Some(3)
    );
    assert_eq!(
        s.core.index_upload_accepted(b"fan", b"jazz\\tune.mp3"),
        None
    );
    // A rescan that lost the file unshares it.
    s.core.set_index_shares(Vec::new());
    assert_eq!(
        s.sent(),
        vec![ClientMessage::Unshare {
            name: b"jazz\\tune.mp3".to_vec()
        }]
    );
}

proptest::proptest! {
    /// Whatever a server sends, in whatever pieces, the core neither panics
    /// nor holds more than its bounds; the session is online or dropped.
    #[test]
    fn any_server_bytes_are_survived(
        pieces in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..20),
        framed in proptest::collection::vec((0u16..1200, proptest::collection::vec(proptest::num::u8::ANY, 0..120)), 0..30),
    ) {
        let mut s = Scripted::start(None);
        s.log_in();
        let id = s.core.start_index_only_search("x");
        s.core.index_search(id, "x", &IndexSearchOptions::default(), s.now);
        for (kind, payload) in framed {
            let mut frame = Vec::new();
            encode_frame(kind, &payload, &mut frame).unwrap();
            s.raw(&frame);
        }
        for piece in pieces {
            s.raw(&piece);
        }
        s.sent();
        let state = s.status().state;
        proptest::prop_assert!(state == "online" || state == "reconnecting", "{state}");
        proptest::prop_assert!(s.core.results(Some(id)).len() <= crate::core::searches::MAX_RESULTS_PER_SEARCH);
    }
}

#[test]
fn a_frame_longer_than_the_bound_ends_the_session_and_it_is_dialled_again() {
    let mut s = Scripted::start(None);
    s.log_in();
    // A header announcing 60,000 bytes: more than any message a client needs.
    let mut huge = Vec::new();
    encode_frame(201, &vec![b'a'; 60_000], &mut huge).unwrap();
    s.raw(&huge[..4096]);
    assert!(s.took(|a| matches!(a, Action::Close(CONN))));
    let status = s.status();
    assert_eq!(status.state, "reconnecting");
    assert!(status.last_error.unwrap().contains("bad frame"));
    s.core
        .handle_timeout(s.now + BACKOFF_FIRST + Duration::from_secs(2));
    s.pump();
    assert!(s.took(|a| matches!(a, Action::ConnectIndex(_))));
}

#[test]
fn a_large_library_is_shared_as_the_output_drains_and_all_of_it_arrives() {
    let mut s = Scripted::start(None);
    s.log_in();
    let shares: Vec<super::IndexShare> = (0..30_000u32)
        .map(|i| super::IndexShare {
            index: i,
            name: format!("music\\artist {i}\\a long enough title {i}.mp3").into_bytes(),
            md5: "0123456789abcdef0123456789abcdef".into(),
            size: 4_000_000,
            bitrate: 128,
            frequency: 44100,
            length: 250,
        })
        .collect();
    s.core.set_index_shares(shares);
    let mut names = std::collections::HashSet::new();
    for tick in 1..=100u64 {
        let queued = s.core.output(CONN).len();
        assert!(queued <= super::SHARE_OUTPUT + 200, "{queued} bytes queued");
        for message in s.sent() {
            let ClientMessage::Share(file) = message else {
                panic!("not a share");
            };
            assert!(names.insert(file.name), "shared twice");
        }
        if names.len() == 30_000 {
            break;
        }
        s.core.handle_timeout(s.now + Duration::from_secs(tick));
        s.pump();
    }
    assert_eq!(names.len(), 30_000);
    assert_eq!(s.status().shared, 30_000);
}
