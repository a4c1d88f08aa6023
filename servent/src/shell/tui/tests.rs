//! Render tests: the screens drawn on ratatui's `TestBackend` in the states
//! a user meets (live results, a running transfer, errors, 80×24), checked
//! on the text a user reads; and the keys that change what is drawn.

use std::net::SocketAddr;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use serde_json::json;

use super::app::{complete, App, DemoInfo, Info, Mode, Screen};
use super::view::{self, Theme, KEYS};
use crate::core::transfers::source::Origin;
use crate::core::transfers::{DownloadInfo, SourceInfo};
use crate::core::{CoreEvent, SearchResult};
use crate::shell::{Reply, Response};

const COLOR: Theme = Theme { color: true };

fn draw(app: &App, width: u16, height: u16, theme: Theme) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal
        .draw(|frame| view::draw(frame, app, theme))
        .expect("draw");
    terminal
}

/// The screen as lines of text.
fn screen(app: &App, width: u16, height: u16) -> Vec<String> {
    let terminal = draw(app, width, height, COLOR);
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

fn line_with<'a>(lines: &'a [String], text: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in\n{}", lines.join("\n")))
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
}

/// Answers every request the app has queued whose line starts with `line`.
fn answer(app: &mut App, line: &str, response: Response) {
    answer_all(app, &[(line, response)]);
}

/// Answers the queued requests whose lines start with one of these (the rest are dropped).
fn answer_all(app: &mut App, answers: &[(&str, Response)]) {
    for (tag, sent) in app.take_requests() {
        if let Some((_, response)) = answers.iter().find(|(line, _)| sent.starts_with(line)) {
            app.on_reply(tag, response.clone());
        }
    }
}

fn hit(id: u64, search: u64, name: &str, urn: Option<&str>, port: u16, push: bool) -> CoreEvent {
    CoreEvent::SearchResult(SearchResult {
        id,
        search,
        servent_id: "00".repeat(16),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        file_index: 1,
        size: 1_572_864,
        name: name.into(),
        urn: urn.map(String::from),
        tiger: None,
        needs_push: push,
        push_proxies: Vec::new(),
        busy: Some(false),
        speed: 350,
        hops: 2,
        origin: crate::core::events::ORIGIN_GNUTELLA.to_string(),
        napster: None,
    })
}

/// An app with one search ("hazel trio") whose results arrived.
fn searched() -> App {
    let mut app = App::new(Info::default());
    app.on_key(key(KeyCode::Char('/')));
    type_text(&mut app, "hazel trio");
    app.on_key(key(KeyCode::Enter));
    // A result may come before the reply that names the search.
    app.on_event(&hit(
        1,
        7,
        "Live at the Loopback.ogg",
        Some("urn:sha1:AAA"),
        1,
        false,
    ));
    answer(
        &mut app,
        "search hazel trio",
        Response::ok(Reply::new(
            "search",
            json!({ "search_id": 7, "text": "hazel trio", "sent_to": 3 }),
        )),
    );
    app.on_event(&hit(
        2,
        7,
        "Live at the Loopback.ogg",
        Some("urn:sha1:AAA"),
        2,
        true,
    ));
    app.on_event(&hit(
        3,
        7,
        "live (copy).ogg",
        Some("urn:sha1:AAA"),
        3,
        false,
    ));
    app.on_event(&hit(4, 7, "Ambient Morning.ogg", None, 4, false));
    app
}

#[test]
fn search_shows_live_results_grouped_by_file_with_sources_and_marks() {
    let app = searched();
    let lines = screen(&app, 80, 24);
    assert!(line_with(&lines, " hazel trio (2) ").contains("/ new search"));
    let header = line_with(&lines, "Name");
    for column in ["Size", "Src▼", "Speed", "Mark", "Origin"] {
        assert!(header.contains(column), "{header}");
    }
    // Three results with one urn are one file with three sources, one of them firewalled.
    let live = line_with(&lines, "Live at the Loopback.ogg");
    assert!(live.contains("1.5 MiB"), "{live}");
    assert!(live.contains(" 3 "), "{live}");
    assert!(live.contains("350k"), "{live}");
    assert!(live.contains(" F "), "{live}");
    assert!(live.contains("overlay"), "{live}");
    // Without a urn: its own group, marked as not downloadable.
    assert!(line_with(&lines, "Ambient Morning.ogg").contains(" ? "));
    assert!(line_with(&lines, "4 results in 2 files").contains("urn:sha1:AAA"));
    assert!(line_with(&lines, "peers").contains("1 searches · 4 results"));
}

#[test]
fn enter_downloads_the_selected_file_and_the_answer_is_shown() {
    let mut app = searched();
    app.on_key(key(KeyCode::Enter));
    let sent = app.take_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, "get 1");
    app.on_reply(
        sent[0].0,
        Response::ok(Reply::new(
            "get",
            json!({ "downloads": [{ "download": 1, "new": true }], "errors": [] }),
        )),
    );
    let lines = screen(&app, 80, 24);
    assert_eq!(lines[23], "download 1 started (`transfers` shows it)");
    // The file without a urn: the servent's refusal, in red.
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    let sent = app.take_requests();
    assert_eq!(sent[0].1, "get 4");
    app.on_reply(
        sent[0].0,
        Response::error("result 4 has no urn:sha1: Hazel only downloads what it can verify"),
    );
    let terminal = draw(&app, 80, 24, COLOR);
    let lines = screen(&app, 80, 24);
    assert!(
        lines[23].starts_with("error: result 4 has no urn:sha1"),
        "{}",
        lines[23]
    );
    assert_eq!(terminal.backend().buffer()[(0, 23)].fg, Color::Red);
}

#[test]
fn search_tabs_switch_sort_and_close() {
    let mut app = searched();
    app.on_key(key(KeyCode::Char('o')));
    let lines = screen(&app, 80, 24);
    assert!(line_with(&lines, "Name▲").contains("Src "));
    // Sorted by name: Ambient first.
    let ambient = lines.iter().position(|l| l.contains("Ambient")).unwrap();
    let live = lines.iter().position(|l| l.contains("Live at")).unwrap();
    assert!(ambient < live);
    app.on_key(key(KeyCode::Char('/')));
    type_text(&mut app, "rain");
    app.on_key(key(KeyCode::Enter));
    answer(
        &mut app,
        "search rain",
        Response::ok(Reply::new(
            "search",
            json!({ "search_id": 8, "sent_to": 0 }),
        )),
    );
    let lines = screen(&app, 80, 24);
    assert!(line_with(&lines, " rain (0) ").contains(" hazel trio (2) "));
    line_with(&lines, "no peer is connected: the search reached nobody");
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.tab, 0);
    app.on_key(key(KeyCode::Char('w')));
    let lines = screen(&app, 80, 24);
    assert!(!lines[1].contains("hazel trio"), "{}", lines[1]);
    assert!(lines[1].contains(" rain (0) "));
}

fn download(state: &str, done: u64, error: Option<&str>) -> DownloadInfo {
    DownloadInfo {
        id: 3,
        name: "Live at the Loopback.ogg".into(),
        urn: "urn:sha1:AAA".into(),
        size: Some(2_000_000),
        done,
        rate: 250_000,
        eta_secs: Some(4),
        sources_active: 2,
        sources_known: 3,
        state: if state == "downloading" {
            "downloading"
        } else {
            "failed"
        },
        verification: "sha1 + tiger tree",
        last_error: error.map(String::from),
        path: None,
        sources: vec![
            SourceInfo {
                addr: "127.0.0.1:4001".parse().unwrap(),
                origin: Origin::Search,
                push: false,
                delivered: 600_000,
                state: "fetching",
                last_error: None,
            },
            SourceInfo {
                addr: "127.0.0.1:4002".parse().unwrap(),
                origin: Origin::Mesh,
                push: true,
                delivered: 0,
                state: "dropped",
                last_error: Some("404 Not Found\u{1b}[2J".into()),
            },
        ],
    }
}

/// The app after a `transfers` poll answered with these downloads (the
/// servent's own types, as JSON: the contract the screen reads).
fn with_transfers(downloads: Vec<DownloadInfo>) -> App {
    let mut app = App::new(Info::default());
    app.screen = Screen::Transfers;
    app.poll(false);
    let uploads = json!([{ "id": 9, "peer": "127.0.0.1:5000", "name": "birdsong.ogg",
                           "size": 1000, "done": 250, "rate": 2048, "state": "sending" }]);
    answer(
        &mut app,
        "transfers",
        Response::ok(Reply::new(
            "transfers",
            json!({ "downloads": downloads, "uploads": uploads }),
        )),
    );
    app
}

#[test]
fn transfers_show_a_running_download_with_its_bar_rate_eta_and_sources() {
    let app = with_transfers(vec![download("downloading", 1_000_000, None)]);
    let lines = screen(&app, 80, 24);
    let row = line_with(&lines, "3   Live at the Loopback");
    assert!(row.contains("█████░░░░░  50%"), "{row}");
    assert!(row.contains("244.1 KiB/s"), "{row}");
    assert!(row.contains("4s"), "{row}");
    assert!(row.contains("2/3"), "{row}");
    assert!(row.contains("downloading"), "{row}");
    assert!(line_with(&lines, "checked by sha1 + tiger tree").contains("1.9 MiB"));
    assert!(line_with(&lines, "127.0.0.1:4001").contains("585.9 KiB  fetching"));
    // A peer's words are escaped, never sent to the terminal as they are.
    let mesh = line_with(&lines, "127.0.0.1:4002");
    assert!(
        mesh.contains("push") && mesh.contains("(404 Not Found\\e[2J)"),
        "{mesh}"
    );
    let upload = line_with(&lines, "127.0.0.1:5000");
    assert!(
        upload.contains("birdsong.ogg") && upload.contains("██░░░░░░░░  25%"),
        "{upload}"
    );
    assert!(line_with(&lines, "peers").contains("dl 1/1 · ul 1"));
    // On a wide terminal the size has its own column.
    let wide = screen(&app, 120, 30);
    assert!(line_with(&wide, "3   Live at the Loopback.ogg").contains("1.9 MiB"));
}

#[test]
fn transfer_keys_pause_resume_retry_and_cancel_after_a_yes() {
    let mut app = with_transfers(vec![download("downloading", 1_000_000, None)]);
    for (code, line) in [
        (KeyCode::Char('p'), "pause 3"),
        (KeyCode::Char('r'), "resume 3"),
        (KeyCode::Char('R'), "retry 3"),
    ] {
        app.on_key(key(code));
        let sent: Vec<String> = app.take_requests().into_iter().map(|(_, l)| l).collect();
        assert_eq!(sent, [line]);
    }
    app.on_key(key(KeyCode::Char('c')));
    assert!(app.take_requests().is_empty());
    let lines = screen(&app, 80, 24);
    assert!(lines[23].starts_with("cancel download 3 (Live at the Loopback.ogg) and delete"));
    assert!(lines[23].ends_with("(y/n)"));
    app.on_key(key(KeyCode::Char('y')));
    let sent: Vec<String> = app.take_requests().into_iter().map(|(_, l)| l).collect();
    assert_eq!(sent, ["cancel 3"]);
}

#[test]
fn a_failed_download_shows_its_error_in_red() {
    let app = with_transfers(vec![download("failed", 0, Some("every source failed"))]);
    let terminal = draw(&app, 80, 24, COLOR);
    let lines = screen(&app, 80, 24);
    assert!(line_with(&lines, "3   Live at the Loopback").contains("failed"));
    let y = lines
        .iter()
        .position(|l| l.starts_with("last error: every source failed"))
        .expect("last error line");
    assert_eq!(terminal.backend().buffer()[(0, y as u16)].fg, Color::Red);
}

#[test]
fn network_shows_peers_traffic_routing_drops_and_the_host_cache() {
    let mut app = App::new(Info::default());
    app.screen = Screen::Network;
    app.poll(false);
    let peers = json!([{ "id": 1, "addr": "127.0.0.1:6346", "direction": "outgoing", "protocol": "0.6",
        "user_agent": "Evil\u{1b}]0;owned\u{7}", "age_secs": 75, "descriptors_in": 12, "descriptors_out": 9,
        "bytes_in": 4096, "bytes_out": 100, "queued_descriptors": 0, "dropped": 2 }]);
    let stats = json!({ "uptime_secs": 75, "received": { "ping": 5, "query": 30, "query_hit": 2 },
        "dropped": { "query": 3 }, "drops_by_reason": { "duplicate": 3 }, "host_cache": 11,
        "pong_cache": 4, "established": 1 });
    answer_all(
        &mut app,
        &[
            ("peers", Response::ok(Reply::new("peers", peers))),
            ("stats", Response::ok(Reply::new("stats", stats))),
            (
                "index status",
                Response::ok(Reply::new(
                    "index",
                    json!([{ "server": "127.0.0.1:8888", "nick": "you", "state": "online",
                        "shared": 2, "users": 12, "files": 3400 },
                        { "server": "127.0.0.1:7777", "nick": "you", "state": "reconnecting",
                        "retry_in_secs": 4, "last_error": "refused\u{1b}[2J" }]),
                )),
            ),
        ],
    );
    app.push_traffic(2048, 512);
    let lines = screen(&app, 80, 24);
    let peer = line_with(&lines, "127.0.0.1:6346");
    assert!(
        peer.contains("out") && peer.contains("1m 15s") && peer.contains("12/9"),
        "{peer}"
    );
    assert!(peer.contains("Evil\\e]0"), "{peer}");
    assert!(!lines.concat().contains('\u{1b}'));
    line_with(&lines, "in 2.0 KiB/s, peak 2.0 KiB/s");
    let received = line_with(&lines, "received");
    assert!(
        received.contains("5        0        30       2"),
        "{received}"
    );
    line_with(&lines, "drops by reason: duplicate 3");
    line_with(&lines, "host cache 11 · pong cache 4");
    line_with(
        &lines,
        "index: 127.0.0.1:8888 as you: online, 12 users, 3400 files, 2 shared by us",
    );
    // The second session, on a wider terminal; its error escaped.
    let wide = screen(&app, 200, 30);
    let index = line_with(&wide, "index: 127.0.0.1:8888");
    assert!(
        index.contains("127.0.0.1:7777 as you: reconnecting, again in 4s (refused\\e[2J)"),
        "{index}"
    );
}

#[test]
fn search_shows_where_each_file_came_from_and_index_files_are_downloadable() {
    let mut app = searched();
    let index_hit = |id: u64, name: &str| {
        let CoreEvent::SearchResult(mut r) = hit(id, 7, name, None, 0, false) else {
            unreachable!()
        };
        r.origin = "index:127.0.0.1:8888".into();
        r.napster = Some(Box::new(crate::core::events::NapsterHit {
            nick: "bob".into(),
            raw_name: name.as_bytes().to_vec(),
            md5: "0".repeat(32),
            bitrate: 128,
            frequency: 44100,
            length: 60,
            link_speed: 9,
        }));
        CoreEvent::SearchResult(r)
    };
    app.on_event(&index_hit(5, "Index Only.mp3"));
    // The same name and size as the overlay hit without a urn: one file, both origins.
    app.on_event(&index_hit(6, "Ambient Morning.ogg"));
    let lines = screen(&app, 80, 24);
    let only = line_with(&lines, "Index Only.mp3");
    assert!(only.contains("index"), "{only}");
    assert!(!only.contains(" ? "), "{only}");
    let both = line_with(&lines, "Ambient Morning.ogg");
    assert!(both.contains("both"), "{both}");

    // An index hit first, then the overlay's for the same file (with a urn):
    // one row, two sources, and Enter downloads through the urn.
    let mut grouped = super::data::Grouped::default();
    let CoreEvent::SearchResult(from_index) = index_hit(8, "Folder\\Song.mp3") else {
        unreachable!()
    };
    let mut from_index = from_index;
    from_index.size = 1000;
    let CoreEvent::SearchResult(mut overlay) = hit(9, 7, "song.mp3", Some("urn:sha1:S"), 5, false)
    else {
        unreachable!()
    };
    overlay.size = 1000;
    grouped.add(&from_index);
    grouped.add(&overlay);
    assert_eq!(grouped.groups.len(), 1);
    let group = &grouped.groups[0];
    assert_eq!((group.origin, group.source_count()), ("both", 2));
    assert_eq!(group.download_result(), Some(9));
}

#[test]
fn library_shows_folders_hashing_and_hits_and_uploads_per_file() {
    let mut app = App::new(Info {
        share_folders: vec!["/srv/music".into()],
        downloads_dir: "/srv/in".into(),
        ..Info::default()
    });
    app.screen = Screen::Library;
    app.poll(true);
    let shares = json!({ "files": 2, "kbytes": 300, "pending_hashes": 1,
        "scan": { "scans": 1, "files_hashed": 1, "bytes_hashed": 102400, "cache_hits": 0 },
        "list": [ { "index": 1, "name": "birdsong.ogg", "size": 102400, "sha1": "urn:sha1:AKPKWIMNJKEOXIMC625WS7CJYQKIQTTV", "hits": 7, "uploads": 2 },
                  { "index": 2, "name": "waves.ogg", "size": 204800, "sha1": null, "hits": 0, "uploads": 0 } ] });
    answer(
        &mut app,
        "shares",
        Response::ok(Reply::new("shares", shares)),
    );
    let lines = screen(&app, 80, 24);
    line_with(&lines, "shared folders: /srv/music");
    line_with(&lines, "2 files, 300.0 KiB · downloads go to /srv/in");
    line_with(&lines, "hashed █████░░░░░  50% (1/2 files)");
    let bird = line_with(&lines, "birdsong.ogg");
    assert!(
        bird.contains("100.0 KiB 7     2       AKPKWIMNJKEO…"),
        "{bird}"
    );
    assert!(line_with(&lines, "waves.ogg").contains("(hashing)"));
}

#[test]
fn every_screen_fits_80_by_24_with_the_status_bar_at_the_bottom() {
    let mut app = searched();
    app.info.demo = Some(DemoInfo {
        dir: "/tmp/x".into(),
        servents: 9,
        firewalled: 2,
        index: Ok("127.0.0.1:9999".into()),
        suggestions: vec!["rain".into()],
    });
    for screen_kind in Screen::ALL {
        app.screen = screen_kind;
        let lines = screen(&app, 80, 24);
        assert!(lines[0].contains(" 1 Search  2 Transfers  3 Network  4 Library"));
        assert!(lines[0].contains("[demo]"));
        assert!(
            lines[22].starts_with(
                " 0 peers · 1 searches · 4 results · dl 0/0 · ul 0 · 0 shared · ↓0/s ↑0/s"
            ),
            "{}",
            lines[22]
        );
    }
    app.screen = Screen::Network;
    let lines = screen(&app, 80, 24);
    // Before `index status` answers: how to join one.
    line_with(
        &lines,
        "index: none (`index connect HOST:PORT NICK` logs in",
    );
    // Smaller than 80×24 still draws (nothing panics).
    for (w, h) in [(40, 10), (20, 5), (1, 1)] {
        for screen_kind in Screen::ALL {
            app.screen = screen_kind;
            screen(&app, w, h);
        }
    }
}

#[test]
fn compact_rates_fit_five_characters() {
    assert_eq!(view::compact_bytes(512), "512");
    assert_eq!(view::compact_bytes(9728), "9.5K");
    assert_eq!(view::compact_bytes(128_000), "125K");
    assert_eq!(view::compact_bytes(3_355_443), "3.2M");
}

#[test]
fn help_lists_every_key_on_an_80_by_24_terminal() {
    let mut app = App::new(Info::default());
    app.on_key(key(KeyCode::Char('?')));
    let lines = screen(&app, 80, 24);
    for (keys, what) in KEYS {
        line_with(&lines, &format!("│{keys:<24}{what}"));
    }
    app.on_key(key(KeyCode::Char('x')));
    assert!(!app.help);
}

#[test]
fn the_command_line_completes_names_keeps_history_and_reports_bad_input_in_one_line() {
    let mut app = App::new(Info::default());
    app.on_key(key(KeyCode::Char(':')));
    type_text(&mut app, "tra");
    app.on_key(key(KeyCode::Tab));
    assert_eq!(
        app.mode,
        Mode::Command(super::app::Input {
            text: "transfers ".into(),
            cursor: 10
        })
    );
    let lines = screen(&app, 80, 24);
    assert_eq!(lines[23], ":transfers");
    app.on_key(key(KeyCode::Enter));
    let sent = app.take_requests();
    assert_eq!(sent[0].1, "transfers");
    // A long answer opens a popup.
    app.on_reply(
        sent[0].0,
        Response::ok(Reply::new(
            "transfers",
            json!({ "downloads": [], "uploads": [] }),
        )),
    );
    let lines = screen(&app, 80, 24);
    line_with(&lines, "no downloads (`get RESULT-ID` starts one)");
    app.on_key(key(KeyCode::Esc));
    assert!(app.popup.is_none());
    // Bad input: a one-line message at once, nothing sent.
    for (typed, message) in [
        (
            "frobnicate 1",
            "error: unknown command `frobnicate` (try `help`)",
        ),
        ("pause x", "error: usage: pause DOWNLOAD-ID"),
        (
            "get",
            "error: usage: get RESULT-ID... | get urn:sha1:HASH [NAME] | get MAGNET",
        ),
    ] {
        app.on_key(key(KeyCode::Char(':')));
        type_text(&mut app, typed);
        app.on_key(key(KeyCode::Enter));
        assert!(app.take_requests().is_empty());
        let lines = screen(&app, 80, 24);
        assert_eq!(lines[23], message);
    }
    // History: Up brings back the last lines, newest first.
    app.on_key(key(KeyCode::Char(':')));
    app.on_key(key(KeyCode::Up));
    app.on_key(key(KeyCode::Up));
    assert_eq!(screen(&app, 80, 24)[23], ":pause x");
    // `:search` opens a tab like `/`.
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Char(':')));
    type_text(&mut app, "search rain");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.take_requests()[0].1, "search rain");
    assert_eq!(app.tabs.len(), 1);
}

#[test]
fn completion_knows_every_command_of_the_language() {
    for (usage, _) in crate::shell::HELP {
        for part in usage.split(" / ") {
            let name = part.split_whitespace().next().unwrap();
            assert!(complete(name).contains(&name), "{name}");
            assert!(crate::shell::Command::parse(name).is_ok() || complete(name).contains(&name));
        }
    }
    assert_eq!(complete("re"), ["rescan", "results", "resume", "retry"]);
    assert!(complete("search words").is_empty());
}

#[test]
fn no_color_draws_without_colours() {
    let app = with_transfers(vec![download("failed", 0, Some("every source failed"))]);
    let terminal = draw(&app, 80, 24, Theme { color: false });
    let buffer = terminal.backend().buffer();
    for y in 0..24 {
        for x in 0..80 {
            let cell = &buffer[(x, y)];
            assert_eq!(
                (cell.fg, cell.bg),
                (Color::Reset, Color::Reset),
                "at {x},{y}"
            );
        }
    }
    let lines = screen(&app, 80, 24);
    line_with(&lines, "last error: every source failed");
}

#[test]
fn quitting_asks_the_servent_and_ends_on_its_answer_or_when_it_is_gone() {
    let mut app = App::new(Info::default());
    app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    let sent = app.take_requests();
    assert_eq!(sent[0].1, "quit");
    assert!(!app.quit);
    assert!(screen(&app, 80, 24)[23].starts_with("quitting: saying Bye"));
    app.on_reply(sent[0].0, Response::ok(Reply::message("bye")));
    assert!(app.quit);
    let mut app = App::new(Info::default());
    app.on_gone();
    assert!(app.quit);
}
