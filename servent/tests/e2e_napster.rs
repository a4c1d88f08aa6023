//! The servent as a Napster client, end to end on loopback: real `hazel`
//! processes and the real index server (the `hazel-index` library's `run`,
//! on a thread of the test, so it can be stopped and started again on the
//! same port under the servents).
//!
//! Two servents log in and share; one searches and sees the other's file
//! both from the index and from the overlay in one `results` list, and
//! downloads it over the Napster data port, byte-identical; the firewalled
//! form (500/501 and `SEND`); both sides firewalled; a refused download;
//! the index restarted (reconnect, re-share). A scripted Napster sharer
//! (frames from the protocol crate) cuts a download short so the retry
//! resumes from an offset.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use hazel_protocol::napster::{
    ClientMessage, DirectBrowseAddress, DirectBrowseError, Login, NapsterFramer, ServerMessage,
    SharedFile, UserFile,
};
use serde_json::Value;
use support::{wait_until, Servent, WAIT};

/// The real index server on a thread, restartable on its port.
struct Index {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    shutdown: hazel_index::Shutdown,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Index {
    fn start() -> Index {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, thread) = Index::run(listener, dir.path());
        Index {
            addr,
            dir,
            shutdown,
            thread: Some(thread),
        }
    }

    fn run(
        listener: TcpListener,
        dir: &std::path::Path,
    ) -> (
        hazel_index::Shutdown,
        std::thread::JoinHandle<std::io::Result<()>>,
    ) {
        let mut config = hazel_index::config::Config::new(dir.to_path_buf());
        config.password_cost = hazel_index::store::PasswordCost {
            memory_kib: 256,
            iterations: 1,
        };
        config.motd = vec!["welcome to the test index".to_string()];
        config.clones_per_ip = 50;
        let shutdown = hazel_index::Shutdown::new();
        let handle = shutdown.clone();
        let thread = std::thread::spawn(move || hazel_index::run(listener, None, config, handle));
        (shutdown, thread)
    }

    fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the server and starts a new one on the same port and store.
    fn restart(&mut self) {
        self.stop();
        let listener = TcpListener::bind(self.addr).expect("the index port again");
        let (shutdown, thread) = Index::run(listener, self.dir.path());
        self.shutdown = shutdown;
        self.thread = Some(thread);
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An MP3-looking file: 128 kbit/s, 44.1 kHz frames, then noise.
fn mp3(frames: usize, extra: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for _ in 0..frames {
        data.extend([0xFF, 0xFB, 0x90, 0x00]);
        data.resize(data.len() + 413, 0x55);
    }
    let mut x: u32 = 12345;
    for _ in 0..extra {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.push((x >> 16) as u8);
    }
    data
}

fn start(name: &str, index: &Index, extra: &[&str], files: &[(&str, &[u8])]) -> Servent {
    let addr = index.addr.to_string();
    let mut args = vec!["--index", &addr, "--nick", name, "--peers", "0"];
    args.extend_from_slice(extra);
    Servent::start(name, &args, files)
}

fn index_state(s: &Servent) -> Value {
    s.must("index status")[0].clone()
}

fn wait_online_sharing(s: &Servent, files: u64) {
    let ok = wait_until(WAIT, || {
        let status = index_state(s);
        status["state"] == "online" && status["shared"].as_u64() == Some(files)
    });
    assert!(
        ok,
        "{} not online sharing {files}: {}\n{}",
        s.name,
        index_state(s),
        s.log()
    );
}

/// Searches until results with both origins (or only `origins`) came back.
fn search_until(s: &Servent, line: &str, wanted: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut found = Vec::new();
    let ok = wait_until(WAIT, || {
        let id = s.must(line)["search_id"].as_u64().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        found = s
            .must(&format!("results {id}"))
            .as_array()
            .cloned()
            .unwrap();
        wanted(&found)
    });
    assert!(ok, "{}: `{line}` found {found:?}\n{}", s.name, s.log());
    found
}

fn download(s: &Servent, result: u64) -> Value {
    let got = s.must(&format!("get {result}"));
    let id = got["downloads"][0]["download"].as_u64().unwrap();
    let mut row = Value::Null;
    wait_until(WAIT, || {
        row = s.must("transfers")["downloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
            .unwrap_or(Value::Null);
        row["state"] == "complete" || row["state"] == "failed"
    });
    row
}

#[test]
fn one_search_lists_the_index_and_the_overlay_and_the_index_result_downloads_byte_identical() {
    let index = Index::start();
    let song = mp3(400, 300_000);
    let bob = start(
        "bob",
        &index,
        &[],
        &[("live/jazz tune.mp3", &song), ("notes.txt", b"not music")],
    );
    let overlay = bob.addr.to_string();
    let alice = start("alice", &index, &["--connect", &overlay], &[]);
    alice.wait_established(1);
    wait_online_sharing(&bob, 2);
    wait_online_sharing(&alice, 0);
    let status = index_state(&bob);
    assert_eq!(status["motd"][0], "welcome to the test index");

    let results = search_until(&alice, "search jazz tune", |r| {
        r.iter().any(|h| h["origin"] == "gnutella") && r.iter().any(|h| h["napster"].is_object())
    });
    let from_index = results
        .iter()
        .find(|h| h["origin"] == format!("index:{}", index.addr))
        .expect("an index result");
    // The name as shared: the shared folder's name, then the path below
    // it, backslashed (TekNap shows what follows the last `\`).
    assert_eq!(from_index["name"], "share\\live\\jazz tune.mp3");
    assert_eq!(from_index["size"], song.len() as u64);
    let napster = &from_index["napster"];
    assert_eq!(napster["nick"], "bob");
    assert_eq!(napster["bitrate"], 128);
    assert_eq!(napster["frequency"], 44100);
    assert_eq!(napster["length"], song.len() as u64 * 8 / 128_000);
    // The Napster md5: of the first 300 KiB.
    use md5::Digest;
    let md5 = data_encoding::HEXLOWER.encode(&md5::Md5::digest(&song[..300 * 1024]));
    assert_eq!(napster["md5"], md5.as_str());
    let from_overlay = results.iter().find(|h| h["origin"] == "gnutella").unwrap();
    assert_eq!(from_overlay["name"], "jazz tune.mp3");

    let row = download(&alice, from_index["id"].as_u64().unwrap());
    assert_eq!(row["state"], "complete", "{row}\n{}", alice.log());
    let saved = std::fs::read(alice.data_dir.join("downloads").join("jazz tune.mp3")).unwrap();
    assert!(saved == song, "the downloaded bytes differ");
    // The sharer counted the upload with the server (220, then 221) and
    // the slot came back.
    assert!(wait_until(WAIT, || bob.must("transfers")
        ["napster_uploads"]
        .as_array()
        .is_some_and(|u| u.is_empty())));

    // The browse of bob lists both files.
    let browse = alice.must("browse bob");
    let id = browse["search_id"].as_u64().unwrap();
    assert!(wait_until(WAIT, || alice
        .must(&format!("results {id}"))
        .as_array()
        .is_some_and(|r| r.len() == 2)));
}

#[test]
fn a_firewalled_sharer_pushes_and_both_firewalled_says_so() {
    let index = Index::start();
    let song = mp3(50, 70_000);
    let bob = start("bob", &index, &["--firewalled"], &[("push me.mp3", &song)]);
    let alice = start("alice", &index, &[], &[]);
    let carol = start("carol", &index, &["--firewalled"], &[]);
    wait_online_sharing(&bob, 1);
    assert_eq!(index_state(&bob)["data_port"], 0);
    wait_online_sharing(&alice, 0);
    wait_online_sharing(&carol, 0);

    let results = search_until(&alice, "search --index push", |r| !r.is_empty());
    let row = download(&alice, results[0]["id"].as_u64().unwrap());
    assert_eq!(
        row["state"],
        "complete",
        "{row}\n{}\n{}",
        alice.log(),
        bob.log()
    );
    let saved = std::fs::read(alice.data_dir.join("downloads").join("push me.mp3")).unwrap();
    assert!(saved == song, "the pushed bytes differ");

    let results = search_until(&carol, "search --index push", |r| !r.is_empty());
    let row = download(&carol, results[0]["id"].as_u64().unwrap());
    assert_eq!(row["state"], "failed");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("firewalled both ways"),
        "{row}"
    );
}

#[test]
fn a_file_gone_from_the_share_is_refused_with_the_reason() {
    let index = Index::start();
    let bob = start("bob", &index, &[], &[("going.mp3", &mp3(10, 1000))]);
    let alice = start("alice", &index, &[], &[]);
    wait_online_sharing(&bob, 1);
    wait_online_sharing(&alice, 0);
    let results = search_until(&alice, "search --index going", |r| !r.is_empty());
    // Bob deletes it and rescans: the index is told (102).
    std::fs::remove_file(bob.share_dir.join("going.mp3")).unwrap();
    bob.must("rescan");
    wait_online_sharing(&bob, 0);
    let row = download(&alice, results[0]["id"].as_u64().unwrap());
    assert_eq!(row["state"], "failed");
    assert!(
        row["last_error"].as_str().unwrap().contains("not shared"),
        "{row}"
    );
    // A sharer with no free upload slot refuses (619): the downloader hears it.
    let busy = start(
        "busy",
        &index,
        &["--upload-slots", "0"],
        &[("wanted.mp3", &mp3(10, 10))],
    );
    wait_online_sharing(&busy, 1);
    let results = search_until(&alice, "search --index wanted", |r| !r.is_empty());
    let row = download(&alice, results[0]["id"].as_u64().unwrap());
    assert_eq!(row["state"], "failed");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("the peer refused"),
        "{row}"
    );
    // And a new file appears after the next rescan.
    std::fs::write(bob.share_dir.join("arriving.mp3"), mp3(10, 10)).unwrap();
    bob.must("rescan");
    wait_online_sharing(&bob, 1);
    search_until(&alice, "search --index arriving", |r| !r.is_empty());
}

#[test]
fn the_index_restarted_under_the_servents_gets_them_back_with_their_shares() {
    let mut index = Index::start();
    let bob = start("bob", &index, &[], &[("phoenix.mp3", &mp3(10, 500))]);
    let alice = start("alice", &index, &[], &[]);
    wait_online_sharing(&bob, 1);
    wait_online_sharing(&alice, 0);
    index.restart();
    assert!(wait_until(WAIT, || bob.log().contains("reconnecting in")));
    wait_online_sharing(&bob, 1);
    wait_online_sharing(&alice, 0);
    let results = search_until(&alice, "search --index phoenix", |r| !r.is_empty());
    assert_eq!(results[0]["napster"]["nick"], "bob");
}

/// A Napster client written out by hand: logs in to the index, shares one
/// file, accepts every upload request, and serves its data port — the
/// first time only `cut` bytes before hanging up (or, when told to hold,
/// before going silent until the downloader goes away).
struct ScriptedSharer {
    offsets: std::sync::mpsc::Receiver<u64>,
    _threads: Vec<std::thread::JoinHandle<()>>,
}

impl ScriptedSharer {
    fn start(index: SocketAddr, name: &str, data: Vec<u8>, cut: usize) -> ScriptedSharer {
        ScriptedSharer::start_holding(index, name, data, cut, false)
    }

    fn start_holding(
        index: SocketAddr,
        name: &str,
        data: Vec<u8>,
        cut: usize,
        hold: bool,
    ) -> ScriptedSharer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap();
        let data_port = port.local_addr().unwrap().port();
        let mut server = TcpStream::connect(index).unwrap();
        server.set_read_timeout(Some(WAIT)).unwrap();
        let mut out = Vec::new();
        ClientMessage::Login(Login {
            nick: "scripted".into(),
            password: b"x".to_vec(),
            port: data_port,
            client_info: b"TekNap 1.3g".to_vec(),
            link_speed: 8,
            build: None,
        })
        .encode(&mut out)
        .unwrap();
        ClientMessage::Share(SharedFile {
            name: name.as_bytes().to_vec(),
            md5: b"nomd5computed".to_vec(),
            size: data.len() as u64,
            bitrate: 160,
            freq: 44100,
            duration: 30,
        })
        .encode(&mut out)
        .unwrap();
        server.write_all(&out).unwrap();
        let control = std::thread::spawn(move || {
            let mut framer = NapsterFramer::new(65535);
            let mut buf = [0u8; 4096];
            while let Ok(n) = server.read(&mut buf) {
                if n == 0 {
                    return;
                }
                framer.push(&buf[..n]);
                while let Ok(Some(frame)) = framer.next_frame() {
                    if let Ok(ServerMessage::UploadRequest(request)) =
                        ServerMessage::from_frame(&frame)
                    {
                        let accept = ClientMessage::UploadAccept(UserFile {
                            nick: request.file.nick,
                            name: request.file.name,
                        });
                        let _ = server.write_all(&accept.to_bytes().unwrap());
                    }
                }
            }
        });
        let (tx, offsets) = std::sync::mpsc::channel();
        let serve = std::thread::spawn(move || {
            for round in 0..2 {
                let Ok((mut peer, _)) = port.accept() else {
                    return;
                };
                peer.set_read_timeout(Some(WAIT)).unwrap();
                peer.write_all(b"1").unwrap();
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                // `GET` then `nick "name" offset`: read up to the first digit
                // after the quoted name, then whatever digits follow at once.
                while !request_has_offset(&request) {
                    if peer.read(&mut byte).unwrap_or(0) == 0 || request.len() > 4096 {
                        return;
                    }
                    request.push(byte[0]);
                }
                peer.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                while let Ok(1) = peer.read(&mut byte) {
                    request.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&request).to_string();
                let offset: u64 = text
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(u64::MAX);
                let _ = tx.send(offset);
                let Ok(start) = usize::try_from(offset) else {
                    return;
                };
                let end = if round == 0 { cut } else { data.len() };
                let mut reply = data.len().to_string().into_bytes();
                reply.extend_from_slice(data.get(start..end).unwrap_or_default());
                let _ = peer.write_all(&reply);
                if hold && round == 0 {
                    // Silent, until the downloader closes (or dies).
                    peer.set_read_timeout(Some(WAIT)).unwrap();
                    let _ = peer.read(&mut byte);
                }
            }
        });
        ScriptedSharer {
            offsets,
            _threads: vec![control, serve],
        }
    }
}

#[test]
fn a_download_cut_short_resumes_from_its_offset_on_retry() {
    let index = Index::start();
    let data = mp3(20, 200_000);
    let cut = 123_457;
    let sharer = ScriptedSharer::start(index.addr, "C:\\Music\\half way.mp3", data.clone(), cut);
    let alice = start("alice", &index, &[], &[]);
    wait_online_sharing(&alice, 0);
    let results = search_until(&alice, "search --index half way", |r| !r.is_empty());
    assert_eq!(results[0]["name"], "C:\\Music\\half way.mp3");
    let result = results[0]["id"].as_u64().unwrap();
    let row = download(&alice, result);
    assert_eq!(row["state"], "failed", "{row}");
    assert!(row["last_error"]
        .as_str()
        .unwrap()
        .contains(&format!("at {cut} of {}", data.len())));
    assert_eq!(sharer.offsets.recv_timeout(WAIT).unwrap(), 0);
    let id = row["id"].as_u64().unwrap();
    // The bytes written so far are where the retry starts.
    assert!(wait_until(WAIT, || {
        alice.must("transfers")["downloads"][0]["done"].as_u64() == Some(cut as u64)
    }));
    alice.must(&format!("retry {id}"));
    assert_eq!(sharer.offsets.recv_timeout(WAIT).unwrap(), cut as u64);
    let mut done = Value::Null;
    assert!(wait_until(WAIT, || {
        done = alice.must("transfers")["downloads"][0].clone();
        done["state"] == "complete"
    }));
    let saved = std::fs::read(alice.data_dir.join("downloads").join("half way.mp3")).unwrap();
    assert!(saved == data, "the resumed file differs");
}

#[test]
fn a_download_killed_half_way_resumes_from_its_state_file_after_a_restart() {
    let index = Index::start();
    let data = mp3(20, 300_000);
    let cut = 200_001;
    let sharer = ScriptedSharer::start_holding(
        index.addr,
        "C:\\Music\\kill me.mp3",
        data.clone(),
        cut,
        true,
    );
    let temp = tempfile::tempdir().unwrap();
    let (data_dir, share_dir) = (temp.path().join("data"), temp.path().join("share"));
    let addr = index.addr.to_string();
    let args = ["--index", &addr, "--nick", "alice", "--peers", "0"];
    let mut alice = Servent::start_in("alice", &data_dir, &share_dir, &args, &[]);
    wait_online_sharing(&alice, 0);
    let results = search_until(&alice, "search --index kill me", |r| !r.is_empty());
    let got = alice.must(&format!("get {}", results[0]["id"]));
    let id = got["downloads"][0]["download"].as_u64().unwrap();
    assert_eq!(sharer.offsets.recv_timeout(WAIT).unwrap(), 0);
    // The first part is on the disk and its state file says so; then a crash.
    let state = data_dir.join(format!("incomplete/napster-{id}-kill me.mp3.state"));
    let saved = wait_until(WAIT, || {
        std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v["received"][0][1].as_u64() == Some(cut as u64))
    });
    assert!(saved, "no state file naming {cut} bytes: {}", alice.log());
    alice.kill();
    let alice = Servent::start_in("alice", &data_dir, &share_dir, &args, &[]);
    // Listed at once, and asked for again from where it stopped once the
    // index is back.
    let row = alice.must("transfers")["downloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(row["done"].as_u64(), Some(cut as u64), "{row}");
    assert_eq!(sharer.offsets.recv_timeout(WAIT).unwrap(), cut as u64);
    let mut done = Value::Null;
    assert!(
        wait_until(WAIT, || {
            done = alice.must("transfers")["downloads"][0].clone();
            done["state"] == "complete"
        }),
        "{done}\n{}",
        alice.log()
    );
    let got = std::fs::read(data_dir.join("downloads").join("kill me.mp3")).unwrap();
    assert!(got == data, "the resumed file differs");
    assert!(!state.exists(), "the state file outlived the download");
}

/// `GET<nick> "<name>" <digit>` has arrived.
fn request_has_offset(request: &[u8]) -> bool {
    let quotes: Vec<usize> = request
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'"')
        .map(|(i, _)| i)
        .collect();
    quotes.len() >= 2
        && request
            .get(quotes[1] + 2)
            .is_some_and(|b| b.is_ascii_digit())
}

#[test]
fn a_search_asking_for_more_than_the_server_gives_gets_the_servers_cap() {
    let index = Index::start();
    let names: Vec<String> = (0..150).map(|i| format!("mix {i:03}.mp3")).collect();
    let body = mp3(3, 0);
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), body.as_slice()))
        .collect();
    let bob = start("bob", &index, &[], &files);
    let alice = start("alice", &index, &[], &[]);
    wait_online_sharing(&bob, 150);
    wait_online_sharing(&alice, 0);
    // hazel-index answers at most --max-results (100 by default) per search.
    let results = search_until(&alice, "search --index --max 500 mix", |r| r.len() >= 100);
    assert_eq!(results.len(), 100);
    let asked = search_until(&alice, "search --index --max 7 mix", |r| !r.is_empty());
    assert_eq!(asked.len(), 7);
}

#[test]
fn a_nick_registered_with_a_password_logs_in_with_it_and_not_without() {
    let index = Index::start();
    let first = start("carol", &index, &["--password", "s3cret"], &[]);
    wait_online_sharing(&first, 0);
    assert!(first.log().contains("logged in as carol (nick registered)"));
    drop(first);
    // The same nick and password again: a login to the account.
    let again = start("carol", &index, &["--password", "s3cret"], &[]);
    wait_online_sharing(&again, 0);
    drop(again);
    // A wrong password: refused with the server's reason, and not retried.
    let wrong = start("carol", &index, &["--password", "guess"], &[]);
    let mut status = Value::Null;
    assert!(wait_until(WAIT, || {
        status = index_state(&wrong);
        status["state"] == "refused"
    }));
    assert_eq!(status["last_error"], "login refused: Invalid password");
    assert!(wrong.log().contains("login refused: Invalid password"));
}

/// A downloader whose offset arrives in two pieces (`12`, then `345` a
/// moment later): nothing delimits the number, so Hazel waits a moment
/// before taking it and serves from byte 12345, not 12.
#[test]
fn an_offset_split_across_two_segments_is_read_whole() {
    let index = Index::start();
    let data = mp3(10, 40_000);
    let bob = start("bob", &index, &[], &[("split offset.mp3", &data)]);
    wait_online_sharing(&bob, 1);

    let mut server = TcpStream::connect(index.addr).unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    let mut out = Vec::new();
    for message in [
        ClientMessage::Login(Login {
            nick: "carol".into(),
            password: b"x".to_vec(),
            port: 0,
            client_info: b"scripted 1".to_vec(),
            link_speed: 8,
            build: None,
        }),
        ClientMessage::Search(
            hazel_protocol::napster::SearchQuery::parse(b"FILENAME CONTAINS \"split\"").unwrap(),
        ),
    ] {
        message.encode(&mut out).unwrap();
    }
    server.write_all(&out).unwrap();
    let mut framer = NapsterFramer::new(65535);
    let mut next = |server: &mut TcpStream| -> ServerMessage {
        let mut buf = [0u8; 4096];
        for _ in 0..1000 {
            if let Ok(Some(frame)) = framer.next_frame() {
                if let Ok(message) = ServerMessage::from_frame(&frame) {
                    return message;
                }
                continue;
            }
            let n = server.read(&mut buf).expect("the index answers");
            assert!(n > 0, "the index closed");
            framer.push(&buf[..n]);
        }
        panic!("no message");
    };
    let name = loop {
        if let ServerMessage::SearchResult(r) = next(&mut server) {
            break r.name;
        }
    };
    let request = ClientMessage::DownloadRequest(UserFile {
        nick: "bob".into(),
        name: name.clone(),
    });
    server.write_all(&request.to_bytes().unwrap()).unwrap();
    let ack = loop {
        if let ServerMessage::DownloadAck(ack) = next(&mut server) {
            break ack;
        }
    };
    let mut peer = TcpStream::connect((ack.ip, ack.port)).unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    let mut greeting = [0u8; 1];
    peer.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"1");
    peer.set_nodelay(true).unwrap();
    let mut line = b"GETcarol \"".to_vec();
    line.extend_from_slice(&name);
    line.extend_from_slice(b"\" 12");
    peer.write_all(&line).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    peer.write_all(b"345").unwrap();
    let size = data.len().to_string();
    let mut reply = Vec::new();
    let want = size.len() + data.len() - 12345;
    let mut buf = [0u8; 65536];
    while reply.len() < want {
        let n = peer.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    assert!(
        reply.starts_with(size.as_bytes()),
        "{:?}",
        &reply[..reply.len().min(20)]
    );
    assert_eq!(reply.len(), want, "bytes from offset 12345 to the end");
    assert!(reply[size.len()..] == data[12345..], "the bytes from 12345");
}

/// A raw Napster client of the index: logs in as `nick` (data port 0 unless
/// told), then sends and reads frames.
struct RawClient {
    server: TcpStream,
    framer: NapsterFramer,
}

impl RawClient {
    fn login(index: SocketAddr, nick: &str, data_port: u16) -> RawClient {
        let server = TcpStream::connect(index).unwrap();
        server.set_read_timeout(Some(WAIT)).unwrap();
        let mut client = RawClient {
            server,
            framer: NapsterFramer::new(65535),
        };
        client.send(&ClientMessage::Login(Login {
            nick: nick.into(),
            password: b"x".to_vec(),
            port: data_port,
            client_info: b"TekNap 1.3g".to_vec(),
            link_speed: 8,
            build: None,
        }));
        client.next(|m| matches!(m, ServerMessage::LoginAck { .. }).then_some(()));
        client
    }

    fn send(&mut self, message: &ClientMessage) {
        self.server.write_all(&message.to_bytes().unwrap()).unwrap();
    }

    /// A browse through the server (211): the files it lists.
    fn server_browse(&mut self, nick: &str) -> Vec<SharedFile> {
        self.send(&ClientMessage::Browse { nick: nick.into() });
        let mut shared = Vec::new();
        self.next(|m| match m {
            ServerMessage::BrowseEntry(entry) => {
                shared.push(entry.file);
                None
            }
            ServerMessage::BrowseEnd(_) => Some(()),
            _ => None,
        });
        shared
    }

    /// A direct browse (640): the server's 641, or its 642.
    fn direct_browse(&mut self, nick: &str) -> Result<DirectBrowseAddress, DirectBrowseError> {
        self.send(&ClientMessage::DirectBrowse { nick: nick.into() });
        self.next(|m| match m {
            ServerMessage::DirectBrowseAccept(a) => Some(Ok(a)),
            ServerMessage::DirectBrowseError(e) => Some(Err(e)),
            _ => None,
        })
    }

    /// Reads messages until `pick` takes one.
    fn next<T>(&mut self, mut pick: impl FnMut(ServerMessage) -> Option<T>) -> T {
        let mut buf = [0u8; 4096];
        loop {
            while let Ok(Some(frame)) = self.framer.next_frame() {
                if let Ok(message) = ServerMessage::from_frame(&frame) {
                    if let Some(found) = pick(message) {
                        return found;
                    }
                }
            }
            let n = self
                .server
                .read(&mut buf)
                .expect("a message from the index");
            assert!(n > 0, "the index closed");
            self.framer.push(&buf[..n]);
        }
    }
}

/// Connects to a data port, reads `1`, sends `request`, reads to the end.
fn data_port_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut peer = TcpStream::connect(addr).unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    let mut greeting = [0u8; 1];
    peer.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"1");
    peer.write_all(request).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    got
}

#[test]
fn a_direct_browse_is_accepted_and_the_list_comes_from_the_data_port() {
    use hazel_protocol::napster::transfer::{encode_list_end, encode_list_entry};
    let index = Index::start();
    let song = mp3(100, 5_000);
    let bob = start(
        "bob",
        &index,
        &[],
        &[("live/jazz tune.mp3", &song), ("notes.txt", b"not music")],
    );
    wait_online_sharing(&bob, 2);
    let mut viewer = RawClient::login(index.addr, "viewer", 0);

    // What bob shares to the index, as a browse through the server lists it.
    let shared = viewer.server_browse("bob");
    assert_eq!(shared.len(), 2);

    // 640 → the index asks bob, bob accepts, the index tells us where.
    let asked = std::time::Instant::now();
    let accept = viewer
        .direct_browse("bob")
        .unwrap_or_else(|e| panic!("refused: {e:?}\n{}", bob.log()));
    assert_eq!(accept.nick, "bob");
    let data_port = SocketAddr::from((accept.ip, accept.port));

    let got = data_port_exchange(data_port, b"GETLIST");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "the browse took {:?}",
        asked.elapsed()
    );
    let mut expected = b"bob\n".to_vec();
    for file in &shared {
        encode_list_entry(&file.borrowed(), &mut expected).unwrap();
    }
    encode_list_end(&mut expected);
    // The lines in the order bob shares them; the server's order may differ.
    let mut got_lines: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
    let mut expected_lines: Vec<&[u8]> = expected.split(|&b| b == b'\n').collect();
    got_lines.sort();
    expected_lines.sort();
    assert_eq!(
        got_lines,
        expected_lines,
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(got.starts_with(b"bob\n") && got.ends_with(b"\n\n"));
    assert_eq!(got.iter().filter(|&&b| b == b'\n').count(), 4);

    // Each accept is good for one list: a second GETLIST (TekNap's form,
    // with its line end) is refused, as is one nobody accepted.
    let again = data_port_exchange(data_port, b"GETLIST\n");
    assert_eq!(again, b"INVALID REQUEST");
    let tail = bob.log();
    assert!(tail.contains("not accepted, refused"), "{tail}");

    // Accepted again, TekNap's form gets the list.
    viewer.send(&ClientMessage::DirectBrowse { nick: "bob".into() });
    viewer.next(|m| matches!(m, ServerMessage::DirectBrowseAccept(_)).then_some(()));
    let got = data_port_exchange(data_port, b"GETLIST\n");
    assert!(got.starts_with(b"bob\n") && got.ends_with(b"\n\n"));
}

#[test]
fn a_firewalled_sharer_pushes_its_list_with_sendlist() {
    let index = Index::start();
    let song = mp3(50, 3_000);
    let bob = start(
        "bob",
        &index,
        &["--firewalled"],
        &[("pushed list.mp3", &song)],
    );
    wait_online_sharing(&bob, 1);
    let port = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut viewer = RawClient::login(index.addr, "viewer", port.local_addr().unwrap().port());

    let shared = viewer.server_browse("bob");
    assert_eq!(shared.len(), 1);

    let accept = viewer
        .direct_browse("bob")
        .unwrap_or_else(|e| panic!("refused: {e:?}\n{}", bob.log()));
    assert_eq!((accept.nick.as_str(), accept.port), ("bob", 0));

    let (mut peer, _) = port.accept().unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    peer.write_all(b"1").unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    let mut expected = b"SENDLIST bob\n".to_vec();
    hazel_protocol::napster::transfer::encode_list_entry(&shared[0].borrowed(), &mut expected)
        .unwrap();
    expected.push(b'\n');
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );

    // At once again from the same nick: not pushed (rate limit).
    viewer.send(&ClientMessage::DirectBrowse { nick: "bob".into() });
    port.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(port.accept().is_err(), "a second push at once");
    assert!(
        bob.log().contains("too many browse pushes"),
        "{}",
        bob.log()
    );
}
