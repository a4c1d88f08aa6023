//! Index downloads against a scripted server and a scripted sharer: the
//! data port's greeting, `GET`, size and bytes, and every way it goes wrong.

use super::*;

/// The 204 for lefty's file, at its data port 127.0.0.1:6699.
fn sharer_accepted() -> ServerMessage {
    ServerMessage::DownloadAck(hazel_protocol::napster::DownloadAck {
        nick: "lefty".into(),
        ip: Ipv4Addr::new(127, 0, 0, 1),
        port: 6699,
        name: b"jazz\\tune.mp3".to_vec(),
        md5: b"0123456789abcdef0123456789abcdef".to_vec(),
        link_speed: 7,
    })
}

/// Logs in, finds one 1000-byte file of `lefty` and asks for it: the core
/// has sent 203 and the server answered 204 with a data port, and the core
/// is connected to that port as `DATA`.
fn download_connected() -> (Scripted, ConnId) {
    const DATA: ConnId = 78;
    let mut s = Scripted::start(None);
    s.log_in();
    let id = s.core.start_index_only_search("tune");
    s.core
        .index_search(id, "tune", &IndexSearchOptions::default(), s.now);
    s.sent();
    let ServerMessage::SearchResult(mut found) = hit("jazz\\tune.mp3", "lefty") else {
        unreachable!()
    };
    found.size = 1000;
    s.server_says(&ServerMessage::SearchResult(found));
    let result = s.core.results(Some(id))[0].id;
    s.core.get_result(result, s.now).unwrap();
    assert!(matches!(
        &s.sent()[..],
        [ClientMessage::DownloadRequest(f)] if f.nick == "lefty" && f.name == b"jazz\\tune.mp3"
    ));
    s.server_says(&sharer_accepted());
    let data_port: SocketAddr = "127.0.0.1:6699".parse().unwrap();
    assert!(s.took(|a| matches!(a, Action::ConnectNapsterData(a) if *a == data_port)));
    assert!(s.core.on_napster_data_connected(DATA, data_port, s.now));
    s.core.on_bytes(DATA, b"1", s.now);
    s.pump();
    let asked = s.core.output(DATA).to_vec();
    assert_eq!(asked, b"GEThazeluser \"jazz\\tune.mp3\" 0");
    s.core.consume_output(DATA, asked.len(), s.now);
    (s, DATA)
}

fn failure(s: &Scripted) -> String {
    s.events
        .iter()
        .find_map(|e| match e {
            CoreEvent::Download(crate::core::transfers::DownloadEvent::Failed {
                reason, ..
            }) => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn a_sharer_that_answers_with_an_error_text_is_quoted_escaped() {
    let (mut s, data) = download_connected();
    s.core.on_bytes(data, b"FILE NOT ", s.now);
    s.core.on_bytes(data, b"SHARED", s.now);
    s.core.on_closed(data, s.now);
    s.pump();
    assert_eq!(failure(&s), "the sharer says: FILE NOT SHARED");
    let (mut s, data) = download_connected();
    s.core.on_bytes(data, b"GO AWAY\x1b[2J", s.now);
    s.core.on_closed(data, s.now);
    s.pump();
    let reason = failure(&s);
    assert!(reason.starts_with("the sharer says: GO AWAY"), "{reason}");
    assert!(!reason.contains('\u{1b}'), "{reason}");
    // The server heard the download neither start nor end.
    assert!(!s.sent().iter().any(|m| matches!(
        m,
        ClientMessage::DownloadStarted | ClientMessage::DownloadFinished
    )));
}

#[test]
fn a_sharer_sending_more_than_the_size_is_cut_off() {
    let (mut s, data) = download_connected();
    let mut reply = b"1000".to_vec();
    reply.extend([7u8; 1001]);
    s.core.on_bytes(data, &reply, s.now);
    s.pump();
    assert_eq!(failure(&s), "the sharer sent more bytes than the size");
    assert!(s.took(|a| matches!(a, Action::Close(c) if *c == data)));
}

#[test]
fn a_sharer_with_another_size_and_one_that_stalls_fail_with_why() {
    let (mut s, data) = download_connected();
    s.core.on_bytes(data, b"999 and more", s.now);
    s.pump();
    assert_eq!(failure(&s), "the sharer has 999 bytes, the index said 1000");

    let (mut s, data) = download_connected();
    s.core.on_bytes(data, b"1000abc", s.now);
    s.pump();
    // 218 once bytes flow.
    assert!(s.sent().contains(&ClientMessage::DownloadStarted));
    s.core.handle_timeout(
        s.now + crate::core::napster::download::STALL_TIMEOUT + Duration::from_secs(2),
    );
    s.pump();
    assert_eq!(failure(&s), "the sharer stalled");
    assert!(s.sent().contains(&ClientMessage::DownloadFinished));
}

#[test]
fn a_paused_download_resumes_from_the_bytes_on_the_disk() {
    let (mut s, data) = download_connected();
    let mut reply = b"1000".to_vec();
    reply.extend([7u8; 400]);
    s.core.on_bytes(data, &reply, s.now);
    s.pump();
    let id = crate::core::napster::download::FIRST_ID;
    // The disk wrote what came.
    s.core.on_disk(
        crate::core::transfers::DiskEvent::Written {
            download: id,
            bytes: 400,
        },
        s.now,
    );
    s.core.pause_download(id, s.now).unwrap();
    s.pump();
    assert!(s.took(|a| matches!(a, Action::Close(c) if *c == data)));
    assert_eq!(s.core.downloads(s.now)[0].state, "paused");
    assert!(s.sent().contains(&ClientMessage::DownloadFinished));
    s.core.resume_download(id, s.now).unwrap();
    assert!(matches!(&s.sent()[..], [ClientMessage::DownloadRequest(_)]));
    s.server_says(&sharer_accepted());
    let port: SocketAddr = "127.0.0.1:6699".parse().unwrap();
    assert!(s.core.on_napster_data_connected(79, port, s.now));
    s.core.on_bytes(79, b"1", s.now);
    assert_eq!(s.core.output(79), b"GEThazeluser \"jazz\\tune.mp3\" 400");
}

#[test]
fn when_one_user_fails_the_next_with_the_same_file_is_asked() {
    let mut s = Scripted::start(None);
    s.log_in();
    let id = s.core.start_index_only_search("tune");
    s.core
        .index_search(id, "tune", &IndexSearchOptions::default(), s.now);
    s.sent();
    s.server_says(&hit("jazz\\tune.mp3", "lefty"));
    s.server_says(&hit("C:\\mp3\\tune.mp3", "righty"));
    // Same name, another md5: another file, not a source.
    let ServerMessage::SearchResult(mut other) = hit("tune.mp3", "wrongo") else {
        unreachable!()
    };
    other.md5 = b"ffffffffffffffffffffffffffffffff".to_vec();
    s.server_says(&ServerMessage::SearchResult(other));
    let first = s.core.results(Some(id))[0].id;
    let (download, _) = s.core.get_result(first, s.now).unwrap();
    assert_eq!(s.core.downloads(s.now)[0].sources_known, 2);
    s.sent();
    s.server_says(&ServerMessage::DownloadError(
        hazel_protocol::napster::UserFile {
            nick: "lefty".into(),
            name: b"jazz\\tune.mp3".to_vec(),
        },
    ));
    // Not failed: the next user is asked at the next tick.
    assert_eq!(failure(&s), "");
    assert!(s.notices().iter().any(|n| n
        .contains("from lefty: the index says the file is not shared (206); asking righty next")));
    s.core.handle_timeout(s.now + Duration::from_secs(2));
    s.pump();
    assert_eq!(
        s.sent(),
        vec![ClientMessage::DownloadRequest(
            hazel_protocol::napster::UserFile {
                nick: "righty".into(),
                name: b"C:\\mp3\\tune.mp3".to_vec(),
            }
        )]
    );
    // righty fails too: now the download has failed, with the last reason.
    s.server_says(&ServerMessage::DownloadError(
        hazel_protocol::napster::UserFile {
            nick: "righty".into(),
            name: b"C:\\mp3\\tune.mp3".to_vec(),
        },
    ));
    assert_eq!(failure(&s), "the index says the file is not shared (206)");
    assert_eq!(s.core.downloads(s.now)[0].id, download);
}
