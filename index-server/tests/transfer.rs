//! End to end: two test clients that also run Napster data ports. One
//! shares, the other searches, negotiates through the server and downloads
//! peer to peer; the bytes are compared with the original.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

use hazel_protocol::napster::transfer::{DataPortRequest, TransferReply, GREETING};
use hazel_protocol::napster::{DownloadAck, SearchResult, ServerMessage};
use support::{Client, Msg, TestServer, WAIT};

/// A file body that starts with an MP3 frame sync byte, as real files do
/// (the size digits end at the first non-digit).
fn file_body(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    let mut body = Vec::with_capacity(len);
    body.push(0xff);
    while body.len() < len {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        body.push((state >> 24) as u8);
    }
    body
}

/// Reads until `parse` finds a whole piece at the start of `buf` (bounded by
/// the socket timeout and a size cap).
fn read_piece<T>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut parse: impl FnMut(&[u8]) -> Option<(T, usize)>,
) -> T {
    loop {
        if let Some((value, used)) = parse(buf) {
            buf.drain(..used);
            return value;
        }
        assert!(buf.len() < 64 * 1024, "piece never completed");
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("read piece");
        assert!(n > 0, "peer closed before the piece completed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn read_exactly(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> Vec<u8> {
    while buf.len() < len {
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).expect("read data");
        assert!(n > 0, "peer closed after {} of {len} bytes", buf.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..len).collect()
}

/// The sharer's data port: serves one GET (sends `1`, reads the request,
/// answers size + data from the offset).
fn serve_one_get(
    listener: TcpListener,
    name: Vec<u8>,
    body: Vec<u8>,
) -> thread::JoinHandle<DataPortRequest> {
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept downloader");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(&[GREETING]).unwrap();
        let mut buf = Vec::new();
        let request = read_piece(&mut stream, &mut buf, |b| {
            DataPortRequest::parse(b).expect("request")
        });
        match &request {
            DataPortRequest::Get {
                name: wanted,
                offset,
                ..
            } if *wanted == name => {
                let mut reply = Vec::new();
                TransferReply::Number(body.len() as u64).encode(&mut reply);
                reply.extend_from_slice(&body[*offset as usize..]);
                stream.write_all(&reply).unwrap();
            }
            _ => stream.write_all(b"FILE NOT SHARED").unwrap(),
        }
        request
    })
}

/// Downloads over a direct connection to the sharer's data port.
fn download(
    addr: SocketAddr,
    my_nick: &str,
    name: &[u8],
    offset: u64,
    expect_size: u64,
) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect data port");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = Vec::new();
    let greeting = read_exactly(&mut stream, &mut buf, 1);
    assert_eq!(greeting, vec![GREETING]);
    // "GET" in its own packet, then the request line, as clients do.
    stream.write_all(b"GET").unwrap();
    let mut line = Vec::new();
    DataPortRequest::Get {
        nick: my_nick.as_bytes().to_vec(),
        name: name.to_vec(),
        offset,
    }
    .encode_line(&mut line)
    .unwrap();
    stream.write_all(&line).unwrap();
    let size = read_piece(&mut stream, &mut buf, |b| {
        TransferReply::parse(b, false).expect("reply")
    });
    assert_eq!(size, TransferReply::Number(expect_size));
    let data = read_exactly(&mut stream, &mut buf, (expect_size - offset) as usize);
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty() && buf.is_empty(), "no bytes after the file");
    data
}

/// The download ack (204) or push request (501) in `msg`.
fn download_ack(msg: &Msg) -> DownloadAck {
    match msg.decode() {
        ServerMessage::DownloadAck(ack) | ServerMessage::FirewalledDownloadAck(ack) => ack,
        other => panic!("not a download ack: {other:?}"),
    }
}

#[test]
fn search_negotiate_and_download_byte_for_byte() {
    let server = TestServer::start();
    let data_port = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = data_port.local_addr().unwrap().port();
    let name = "C:\\My Music\\Hazel Band\\Open Road.mp3";
    let body = file_body(300_000, 7);

    let mut sharer = server.login("sharer", port);
    sharer.share(name, body.len() as u64);
    sharer.sync();
    let sharer_thread = serve_one_get(data_port, name.as_bytes().to_vec(), body.clone());

    let mut downloader = server.login("getter", 6700);
    downloader.send(200, "FILENAME CONTAINS \"open road\" MAX_RESULTS 10");
    let results: Vec<SearchResult> = downloader
        .recv_until(202)
        .iter()
        .filter(|m| m.kind == 201)
        .map(|m| match m.decode() {
            ServerMessage::SearchResult(r) => r,
            other => panic!("not a result: {other:?}"),
        })
        .collect();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].name, name.as_bytes());
    assert_eq!(results[0].size, body.len() as u64);
    assert_eq!(results[0].nick, "sharer");

    // 203 → (server) 607 → (sharer) 608 → (server) 204.
    downloader.send(203, &format!("sharer \"{name}\""));
    let ask = sharer.recv_kind(607);
    assert_eq!(ask.text(), format!("getter \"{name}\" 7"));
    sharer.send(608, &format!("getter \"{name}\""));
    let ack = download_ack(&downloader.recv_kind(204));
    assert_eq!(ack.name, name.as_bytes());
    assert_eq!(ack.nick, "sharer");
    let addr = SocketAddr::from((ack.ip, ack.port));
    assert_eq!(addr.port(), port);

    downloader.send(218, "");
    sharer.send(220, "");
    let data = download(addr, "getter", name.as_bytes(), 0, body.len() as u64);
    downloader.send(219, "");
    sharer.send(221, "");
    assert!(data == body, "downloaded bytes differ from the shared file");
    match sharer_thread.join().unwrap() {
        DataPortRequest::Get { nick, offset, .. } => {
            assert_eq!(nick, b"getter");
            assert_eq!(offset, 0);
        }
        other => panic!("unexpected request {other:?}"),
    }
}

#[test]
fn resumed_download_gets_the_rest_from_the_offset() {
    let server = TestServer::start();
    let data_port = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = data_port.local_addr().unwrap().port();
    let name = "tunes\\resume me.mp3";
    let body = file_body(50_000, 11);
    let mut sharer = server.login("seed", port);
    sharer.share(name, body.len() as u64);
    sharer.sync();
    let sharer_thread = serve_one_get(data_port, name.as_bytes().to_vec(), body.clone());
    let mut downloader = server.login("leech", 0);
    downloader.send(203, &format!("seed \"{name}\""));
    sharer.recv_kind(607);
    sharer.send(608, &format!("leech \"{name}\""));
    let ack = download_ack(&downloader.recv_kind(204));
    let addr = SocketAddr::from((ack.ip, ack.port));
    let tail = download(addr, "leech", name.as_bytes(), 20_000, body.len() as u64);
    assert!(tail == body[20_000..]);
    sharer_thread.join().unwrap();
}

#[test]
fn firewalled_sharer_pushes_with_send() {
    let server = TestServer::start();
    let name = "C:\\Shared\\Behind Wall.mp3";
    let body = file_body(120_000, 3);

    // The sharer is firewalled (data port 0); the downloader listens.
    let mut sharer = server.login("walled", 0);
    sharer.share(name, body.len() as u64);
    sharer.sync();
    let downloader_port = TcpListener::bind("127.0.0.1:0").unwrap();
    let dport = downloader_port.local_addr().unwrap().port();
    let mut downloader = server.login("catcher", dport);

    // The downloader's data port: greets, reads SEND, answers offset 0, reads the file.
    let expected_len = body.len();
    let receiver = thread::spawn(move || {
        let (mut stream, _) = downloader_port.accept().expect("accept pusher");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(&[GREETING]).unwrap();
        let mut buf = Vec::new();
        let request = read_piece(&mut stream, &mut buf, |b| {
            DataPortRequest::parse(b).expect("request")
        });
        stream.write_all(b"0").unwrap();
        let data = read_exactly(&mut stream, &mut buf, expected_len);
        (request, data)
    });

    downloader.send(203, &format!("walled \"{name}\""));
    sharer.recv_kind(607);
    sharer.send(608, &format!("catcher \"{name}\""));
    let ack = download_ack(&downloader.recv_kind(204));
    assert_eq!(
        ack.port, 0,
        "sharer's port 0 tells the downloader to ask for a push"
    );

    // 500 → (server) 501 to the sharer with the downloader's address.
    downloader.send(500, &format!("walled \"{name}\""));
    let push = download_ack(&sharer.recv_kind(501));
    assert_eq!(push.name, name.as_bytes());
    assert_eq!(push.nick, "catcher");
    let addr = SocketAddr::from((push.ip, push.port));
    assert_eq!(addr.port(), dport);

    // The sharer connects out and pushes.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_exactly(&mut stream, &mut buf, 1), vec![GREETING]);
    stream.write_all(b"SEND").unwrap();
    let mut line = Vec::new();
    DataPortRequest::Send {
        nick: b"walled".to_vec(),
        name: name.as_bytes().to_vec(),
        size: body.len() as u64,
    }
    .encode_line(&mut line)
    .unwrap();
    stream.write_all(&line).unwrap();
    let offset = read_piece(&mut stream, &mut buf, |b| {
        TransferReply::parse(b, !b.is_empty()).expect("offset")
    });
    assert_eq!(offset, TransferReply::Number(0));
    stream.write_all(&body).unwrap();
    drop(stream);

    let (request, data) = receiver.join().unwrap();
    assert_eq!(
        request,
        DataPortRequest::Send {
            nick: b"walled".to_vec(),
            name: name.as_bytes().to_vec(),
            size: body.len() as u64,
        }
    );
    assert!(data == body, "pushed bytes differ from the shared file");
}

#[test]
fn download_of_an_unshared_file_is_refused_by_the_server() {
    let server = TestServer::start();
    let mut sharer = server.login("owner", 6699);
    sharer.share("a\\real.mp3", 10);
    sharer.sync();
    let mut downloader: Client = server.login("asker", 0);
    downloader.send(203, "owner \"a\\imaginary.mp3\"");
    let err = downloader.recv();
    assert_eq!(
        (err.kind, err.text().as_str()),
        (206, "owner \"a\\imaginary.mp3\"")
    );
    sharer.send(214, "");
    assert_eq!(sharer.recv().kind, 214, "no 607 reached the sharer");
}
