//! Unit tests of the server logic: frames in, frames and closes out.

use super::*;
use crate::store::PasswordCost;
use hazel_protocol::napster::{NapsterFramer, SearchResult};

fn server(now: Instant) -> Server {
    let cost = PasswordCost {
        memory_kib: 64,
        iterations: 1,
    };
    Server::new(
        Config::new(std::path::PathBuf::from(".")),
        Store::open_in_memory(cost).unwrap(),
        now,
    )
}

/// Decodes everything queued for `id` as server messages.
fn replies(out: &mut Outbox, id: ConnId) -> Vec<ServerMessage> {
    let (frames, _) = out.take();
    let mut framer = NapsterFramer::new(65535);
    for (to, bytes) in frames {
        if to == id {
            framer.push(&bytes);
        }
    }
    let mut got = Vec::new();
    while let Some(frame) = framer.next_frame().unwrap() {
        got.push(ServerMessage::from_frame(&frame).unwrap());
    }
    got
}

#[test]
fn search_results_decode_as_the_protocol_crate_reads_them() {
    let now = Instant::now();
    let mut s = server(now);
    let mut out = Outbox::new();
    let (a, b) = (ConnId(1), ConnId(2));
    let ip = Ipv4Addr::new(10, 0, 0, 7);
    assert!(s.on_connect(a, ip, now, &mut out));
    assert!(s.on_connect(b, Ipv4Addr::LOCALHOST, now, &mut out));
    s.on_frame(a, 2, b"sharer pw 6699 \"nap\" 8", now, &mut out);
    s.on_frame(b, 2, b"seeker pw 0 \"nap\" 3", now, &mut out);
    s.on_frame(
        a,
        100,
        b"\"Music\\Artist\\Song Title.mp3\" abc123 5000 192 48000 240",
        now,
        &mut out,
    );
    out.take();
    s.on_frame(
        b,
        200,
        b"FILENAME CONTAINS \"song\" MAX_RESULTS 10",
        now,
        &mut out,
    );
    let got = replies(&mut out, b);
    assert_eq!(
        got,
        vec![
            ServerMessage::SearchResult(SearchResult {
                name: b"Music\\Artist\\Song Title.mp3".to_vec(),
                md5: b"abc123".to_vec(),
                size: 5000,
                bitrate: 192,
                freq: 48000,
                duration: 240,
                nick: "sharer".to_string(),
                ip,
                link_speed: 8,
                weight: None,
            }),
            ServerMessage::SearchEnd,
        ]
    );
}

#[test]
fn all_results_of_a_search_share_one_buffer() {
    let now = Instant::now();
    let mut s = server(now);
    let mut out = Outbox::new();
    let (a, b) = (ConnId(1), ConnId(2));
    s.on_connect(a, Ipv4Addr::LOCALHOST, now, &mut out);
    s.on_connect(b, Ipv4Addr::LOCALHOST, now, &mut out);
    s.on_frame(a, 2, b"sharer pw 6699 \"nap\" 8", now, &mut out);
    s.on_frame(b, 2, b"seeker pw 0 \"nap\" 3", now, &mut out);
    for i in 0..30 {
        let share = format!("\"d\\common {i}.mp3\" m 1 128 44100 60");
        s.on_frame(a, 100, share.as_bytes(), now, &mut out);
    }
    out.take();
    s.on_frame(
        b,
        200,
        b"FILENAME CONTAINS \"common\" MAX_RESULTS 100",
        now,
        &mut out,
    );
    let (frames, closes) = out.take();
    assert!(closes.is_empty());
    assert_eq!(frames.len(), 1, "one batch for the searcher");
    assert_eq!(frames[0].0, b);
}

/// Runs the password jobs queued in `out`, as the reactor's worker does.
/// Runs the password jobs and store writes queued in `out`, and those
/// their outcomes queue, as the reactor's worker threads do.
fn run_jobs(s: &mut Server, out: &mut Outbox, now: Instant) {
    loop {
        let (jobs, writes) = (out.take_jobs(), out.take_writes());
        if jobs.is_empty() && writes.is_empty() {
            return;
        }
        for job in jobs {
            let conn = job.conn();
            let outcome = job.run();
            s.on_password_result(conn, outcome, now, out);
        }
        for write in writes {
            let done = write.run(&mut s.store);
            s.on_store_result(done, now, out);
        }
    }
}

#[test]
fn a_registration_never_takes_the_nick_of_an_online_guest() {
    let now = Instant::now();
    let mut s = server(now);
    let mut out = Outbox::new();
    let (guest, thief, racer) = (ConnId(1), ConnId(2), ConnId(3));
    for id in [guest, thief, racer] {
        assert!(s.on_connect(id, Ipv4Addr::new(10, 0, 0, id.0 as u8), now, &mut out));
    }
    s.on_frame(guest, 2, b"alice pw 0 \"nap\" 3", now, &mut out);
    s.on_frame(
        guest,
        100,
        b"\"d\\song.mp3\" m 1 128 44100 60",
        now,
        &mut out,
    );
    out.take();
    s.on_frame(thief, 6, b"alice pw 0 \"nap\" 3 a@b", now, &mut out);
    run_jobs(&mut s, &mut out, now);
    assert_eq!(
        replies(&mut out, thief),
        vec![ServerMessage::Error {
            message: b"alice is already active".to_vec()
        }]
    );
    assert!(s.is_online(guest));
    assert_eq!(s.catalog.count_of(guest), 1, "the guest keeps its files");

    // The nick is free when the registration starts, and a guest takes
    // it while the password is being hashed: the guest stays.
    s.on_frame(racer, 6, b"bob pw 0 \"nap\" 3 b@b", now, &mut out);
    let late = ConnId(4);
    assert!(s.on_connect(late, Ipv4Addr::new(10, 0, 0, 4), now, &mut out));
    s.on_frame(late, 2, b"bob pw 0 \"nap\" 3", now, &mut out);
    out.take();
    run_jobs(&mut s, &mut out, now);
    let (_, closes) = out.take();
    assert_eq!(closes, vec![racer]);
    assert!(s.is_online(late));
    assert_eq!(s.store.account("bob").unwrap(), None, "nothing registered");
}

#[test]
fn a_registration_on_its_way_to_disk_holds_its_nick() {
    let now = Instant::now();
    let mut s = server(now);
    let mut out = Outbox::new();
    let (registrant, guest, checker) = (ConnId(1), ConnId(2), ConnId(3));
    for id in [registrant, guest, checker] {
        assert!(s.on_connect(id, Ipv4Addr::new(10, 0, 0, id.0 as u8), now, &mut out));
    }
    s.on_frame(registrant, 6, b"carol pw 0 \"nap\" 3 c@c", now, &mut out);
    // The hash is done; the account is not stored yet.
    for job in out.take_jobs() {
        let conn = job.conn();
        let outcome = job.run();
        s.on_password_result(conn, outcome, now, &mut out);
    }
    let writes = out.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(s.is_authenticating(registrant), "input stays paused");
    assert_eq!(s.store.account("carol").unwrap(), None);
    s.on_frame(checker, 7, b"carol", now, &mut out);
    assert_eq!(
        replies(&mut out, checker),
        vec![ServerMessage::NickRegistered]
    );
    s.on_frame(guest, 2, b"carol pw 0 \"nap\" 3", now, &mut out);
    assert_eq!(
        replies(&mut out, guest),
        vec![ServerMessage::Error {
            message: b"carol is already active".to_vec()
        }]
    );
    // Stored: the registrant goes online with its account.
    for write in writes {
        let done = write.run(&mut s.store);
        s.on_store_result(done, now, &mut out);
    }
    assert!(s.is_online(registrant));
    assert_eq!(
        replies(&mut out, registrant).first(),
        Some(&ServerMessage::LoginAck {
            email: b"c@c".to_vec()
        })
    );
    assert!(s.store.account("carol").unwrap().is_some());
    assert!(!s.is_reserved("carol"));
}

#[test]
fn login_timeout_closes_only_silent_connections() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let mut out = Outbox::new();
    s.on_connect(ConnId(1), Ipv4Addr::LOCALHOST, t0, &mut out);
    s.on_connect(ConnId(2), Ipv4Addr::LOCALHOST, t0, &mut out);
    s.on_frame(ConnId(2), 2, b"quick pw 0 \"nap\" 3", t0, &mut out);
    out.take();
    s.on_tick(t0 + s.config().login_timeout, &mut out);
    let (_, closes) = out.take();
    assert_eq!(closes, vec![ConnId(1)]);
}

/// Payloads that are valid for some message, to mix with random bytes.
const TEMPLATES: &[&[u8]] = &[
    b"nick pw 6699 \"nap\" 3",
    b"nick pw 0 \"nap\" 3 e@x",
    b"\"d\\some song.mp3\" m 100 128 44100 60",
    b"\"d\" \"a.mp3\" m 1 128 44100 60 \"b.mp3\" m 2 128 44100 60",
    b"FILENAME CONTAINS \"song\" MAX_RESULTS 5",
    b"nick \"d\\some song.mp3\"",
    b"nick \"d\\some song.mp3\" 3",
    b"nick",
    b"nick admin",
    b"nick \"reason\"",
    b"d\\some song.mp3",
    b"",
];
const KINDS: &[u16] = &[
    2, 6, 7, 100, 102, 110, 200, 203, 211, 214, 218, 219, 220, 221, 500, 603, 606, 608, 610, 611,
    612, 614, 615, 619, 621, 750, 751, 752, 753, 870, 9999,
];

proptest::proptest! {
    #[test]
    fn any_message_sequence_keeps_the_server_consistent(
        steps in proptest::collection::vec(
            (0u64..4, 0usize..KINDS.len(), 0usize..TEMPLATES.len() + 1,
             proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 0u8..3),
            1..60,
        )
    ) {
        let t0 = Instant::now();
        let mut s = server(t0);
        let mut out = Outbox::new();
        let nicks = ["nick", "other", "third", "fourth"];
        for c in 0..4u64 {
            s.on_connect(ConnId(c), Ipv4Addr::new(10, 0, 0, c as u8), t0, &mut out);
        }
        for (i, (conn, k, template, random, action)) in steps.into_iter().enumerate() {
            let now = t0 + std::time::Duration::from_millis(i as u64 * 10);
            let id = ConnId(conn);
            match action {
                0 => {
                    let payload = match TEMPLATES.get(template) {
                        Some(t) => t.to_vec(),
                        None => random,
                    };
                    // Each connection uses its own nick in login templates.
                    let payload = if KINDS[k] == 2 || KINDS[k] == 6 {
                        let text = String::from_utf8_lossy(&payload)
                            .replacen("nick", nicks[conn as usize], 1);
                        text.into_bytes()
                    } else {
                        payload
                    };
                    s.on_frame(id, KINDS[k], &payload, now, &mut out);
                }
                1 => s.on_tick(now, &mut out),
                _ => run_jobs(&mut s, &mut out, now),
            }
            let (_, closes) = out.take();
            for id in closes {
                s.on_disconnect(id);
            }
            proptest::prop_assert!(s.users() <= s.connections());
            proptest::prop_assert_eq!(s.metrics.files, s.catalog.total_files());
            let counted: usize = (0..4).map(|c| s.catalog.count_of(ConnId(c))).sum();
            proptest::prop_assert_eq!(counted as u64, s.catalog.total_files());
            for c in 0..4 {
                if !s.is_online(ConnId(c)) {
                    proptest::prop_assert_eq!(s.catalog.count_of(ConnId(c)), 0);
                }
            }
            for (nick, id) in &s.nicks {
                let online = s.sessions.get(id).and_then(|x| x.nick()).map(nick_key);
                proptest::prop_assert_eq!(online.as_deref(), Some(nick.as_str()));
            }
        }
    }
}
