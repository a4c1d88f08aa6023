//! End-to-end downloads between real `hazel` processes on loopback: one
//! source, several sources at once, a resume after `kill -9`, sources that
//! lie, stall or hang up, and the Push/GIV path of a firewalled source.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{num, wait_until, Servent, WAIT};

/// Content that tells where a wrong byte came from.
fn content(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Waits until `servent` shares `name` with its SHA-1 known.
fn wait_hashed(servent: &Servent, name: &str) {
    let hashed = wait_until(WAIT, || {
        servent.must("shares")["list"]
            .as_array()
            .is_some_and(|l| l.iter().any(|f| f["name"] == name && f["sha1"].is_string()))
    });
    assert!(hashed, "{} never hashed {name}", servent.name);
}

/// Searches from `from` until a result named `name` arrives; its id.
fn find(from: &Servent, words: &str, name: &str) -> u64 {
    let search = from.must(&format!("search {words}"));
    let search_id = num(&search, "search_id");
    let mut id = None;
    let found = wait_until(WAIT, || {
        id = from
            .must(&format!("results {search_id}"))
            .as_array()
            .and_then(|rows| {
                rows.iter()
                    .find(|r| r["name"] == name && r["urn"].is_string())
                    .map(|r| num(r, "id"))
            });
        id.is_some()
    });
    assert!(found, "no result for {name}\n{}", from.log());
    id.unwrap_or(0)
}

fn download(servent: &Servent, id: u64) -> Option<Value> {
    servent.must("transfers")["downloads"]
        .as_array()
        .and_then(|rows| rows.iter().find(|d| num(d, "id") == id).cloned())
}

/// Waits until download `id` is done; where it was saved.
fn wait_done(servent: &Servent, id: u64, within: Duration) -> PathBuf {
    let mut last = Value::Null;
    let done = wait_until(within, || {
        last = download(servent, id).unwrap_or(Value::Null);
        last["state"] == "done"
    });
    assert!(
        done,
        "download {id} did not finish: {last}\n{}",
        servent.log()
    );
    PathBuf::from(last["path"].as_str().expect("a path"))
}

fn started_download(reply: &Value) -> u64 {
    num(&reply["downloads"][0], "download")
}

fn same_bytes(path: &Path, expected: &[u8]) {
    let got = std::fs::read(path).expect("the downloaded file");
    assert_eq!(got.len(), expected.len(), "size");
    assert!(got == expected, "the downloaded bytes differ");
}

#[test]
fn a_file_found_by_search_downloads_byte_identical_from_one_source() {
    let data = content(3 * 1024 * 1024 + 123, 1);
    let source = Servent::start("source", &["--peers", "0"], &[("one source.bin", &data)]);
    let getter = Servent::start(
        "getter",
        &["--peers", "0", "--connect", &source.addr.to_string()],
        &[],
    );
    getter.wait_established(1);
    wait_hashed(&source, "one source.bin");
    let result = find(&getter, "one source", "one source.bin");
    let reply = getter.must(&format!("get {result}"));
    let id = started_download(&reply);
    let path = wait_done(&getter, id, WAIT);
    same_bytes(&path, &data);
    // The hit's bitprint gave the root; the source served the tree.
    let info = download(&getter, id).expect("the download");
    assert_eq!(info["verification"], "tiger tree and sha1", "{info}");
    // A finished download moves no bytes.
    assert_eq!(info["rate"], 0, "{info}");
    assert!(
        path.starts_with(getter.data_dir.join("downloads")),
        "{}",
        path.display()
    );
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some("one source.bin")
    );
    // Nothing is left in incomplete/.
    let left: Vec<_> = std::fs::read_dir(getter.data_dir.join("incomplete"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn three_sources_at_once_each_serve_part_of_the_file() {
    let data = content(12 * 1024 * 1024, 2);
    let sources: Vec<Servent> = (0..3)
        .map(|i| {
            Servent::start(
                &format!("s{i}"),
                &["--peers", "0"],
                &[("shared by three.bin", &data)],
            )
        })
        .collect();
    let mut args = vec![
        "--peers".to_string(),
        "0".into(),
        "--sources-per-download".into(),
        "3".into(),
    ];
    for s in &sources {
        args.push("--connect".into());
        args.push(s.addr.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let getter = Servent::start("getter", &args, &[]);
    getter.wait_established(3);
    for s in &sources {
        wait_hashed(s, "shared by three.bin");
    }
    // All three answer the one search: one download, three sources.
    let search = getter.must("search shared by three");
    let search_id = num(&search, "search_id");
    assert!(wait_until(WAIT, || getter
        .must(&format!("results {search_id}"))
        .as_array()
        .is_some_and(|r| r.len() == 3)));
    let first = num(&getter.must(&format!("results {search_id}"))[0], "id");
    let id = started_download(&getter.must(&format!("get {first}")));
    let path = wait_done(&getter, id, WAIT);
    same_bytes(&path, &data);
    let info = download(&getter, id).expect("the download");
    let delivered: Vec<u64> = info["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| num(s, "delivered"))
        .collect();
    assert_eq!(delivered.len(), 3, "{info}");
    assert!(
        delivered.iter().all(|&d| d > 0),
        "each source served part: {delivered:?}"
    );
    assert_eq!(
        delivered.iter().sum::<u64>(),
        data.len() as u64,
        "no range twice"
    );
}

#[test]
fn a_download_killed_half_way_resumes_after_a_restart_byte_identical() {
    let data = content(8 * 1024 * 1024, 3);
    let slow = support::HttpSource::start(data.clone(), support::Behaviour::Throttled(1024 * 1024));
    let magnet = support::magnet_for(&data, "resumed.bin", &[slow.addr]);
    let temp = tempfile::tempdir().expect("temp");
    let (data_dir, share_dir) = (temp.path().join("data"), temp.path().join("share"));
    let mut getter = Servent::start_in("getter", &data_dir, &share_dir, &["--peers", "0"], &[]);
    let id = started_download(&getter.must(&format!("get {magnet}")));
    // Half way (and past a checkpoint), kill it as a crash would.
    assert!(wait_until(WAIT, || download(&getter, id)
        .is_some_and(|d| num(&d, "done") >= 2 * 1024 * 1024)));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        data_dir.join("incomplete/resumed.bin.state").exists(),
        "a checkpoint was saved"
    );
    getter.kill();
    let served_before = slow.served();
    let getter = Servent::start_in("getter", &data_dir, &share_dir, &["--peers", "0"], &[]);
    let path = wait_done(&getter, id, Duration::from_secs(60));
    same_bytes(&path, &data);
    let total = slow.served();
    assert!(
        total < data.len() as u64 + served_before / 2,
        "the restart fetched again what it had: {total} bytes served for a {}-byte file ({served_before} before the kill)",
        data.len()
    );
}

#[test]
fn a_source_that_stalls_or_hangs_up_loses_its_range_to_the_others() {
    let data = content(8 * 1024 * 1024, 4);
    let honest =
        support::HttpSource::start(data.clone(), support::Behaviour::Throttled(2 * 1024 * 1024));
    let staller = support::HttpSource::start(data.clone(), support::Behaviour::StallAfter(10_000));
    let closer = support::HttpSource::start(data.clone(), support::Behaviour::CloseAfter(50_000));
    let magnet = support::magnet_for(
        &data,
        "stubborn.bin",
        &[staller.addr, closer.addr, honest.addr],
    );
    let getter = Servent::start(
        "getter",
        &["--peers", "0", "--transfer-stall-timeout", "2"],
        &[],
    );
    let id = started_download(&getter.must(&format!("get {magnet}")));
    let path = wait_done(&getter, id, Duration::from_secs(60));
    same_bytes(&path, &data);
    let info = download(&getter, id).expect("the download");
    let errors: Vec<String> = info["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["last_error"].as_str().map(str::to_string))
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("no byte for 2 s")),
        "{info}"
    );
    assert!(
        errors.iter().any(|e| e.contains("closed in the middle")),
        "{info}"
    );
}

#[test]
fn a_firewalled_source_is_reached_through_a_push_and_its_giv() {
    let data = content(1024 * 1024 + 7, 5);
    let hidden = Servent::start(
        "hidden",
        &["--peers", "0", "--firewalled"],
        &[("behind the wall.bin", &data)],
    );
    let getter = Servent::start("getter", &["--peers", "0"], &[]);
    // The firewalled one connects out; the getter never dials it.
    hidden.must(&format!("connect {}", getter.addr));
    getter.wait_established(1);
    wait_hashed(&hidden, "behind the wall.bin");
    let result = find(&getter, "behind the wall", "behind the wall.bin");
    let hit = getter.must("results");
    assert!(
        hit.as_array()
            .is_some_and(|r| r.iter().any(|h| h["needs_push"] == true)),
        "the hit asks for a Push: {hit}"
    );
    let id = started_download(&getter.must(&format!("get {result}")));
    let path = wait_done(&getter, id, WAIT);
    same_bytes(&path, &data);
    let info = download(&getter, id).expect("the download");
    assert_eq!(info["sources"][0]["push"], true, "{info}");
}

#[test]
fn when_both_sides_are_firewalled_the_download_fails_saying_so() {
    let data = content(100_000, 6);
    let hidden = Servent::start(
        "hidden",
        &["--peers", "0", "--firewalled"],
        &[("unreachable.bin", &data)],
    );
    let getter = Servent::start("getter", &["--peers", "0", "--firewalled"], &[]);
    hidden.must(&format!("connect {}", getter.addr));
    getter.wait_established(1);
    wait_hashed(&hidden, "unreachable.bin");
    let result = find(&getter, "unreachable", "unreachable.bin");
    let id = started_download(&getter.must(&format!("get {result}")));
    let mut last = Value::Null;
    assert!(
        wait_until(WAIT, || {
            last = download(&getter, id).unwrap_or(Value::Null);
            last["state"] == "failed"
        }),
        "{last}"
    );
    let why = last["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("firewalled"), "{why}");
}

#[test]
fn a_downloader_learns_the_other_sources_from_the_mesh_of_the_one_it_was_given() {
    let data = content(3 * 1024 * 1024, 7);
    let a = Servent::start("a", &["--peers", "0"], &[("meshed.bin", &data)]);
    let b = Servent::start("b", &["--peers", "0"], &[("meshed.bin", &data)]);
    wait_hashed(&a, "meshed.bin");
    wait_hashed(&b, "meshed.bin");
    // `relay` downloads from a and b into its shared folder, so it shares
    // the file with both as verified locations.
    let temp = tempfile::tempdir().expect("temp");
    let (data_dir, share_dir) = (temp.path().join("data"), temp.path().join("share"));
    let share = share_dir.display().to_string();
    let relay = Servent::start_in(
        "relay",
        &data_dir,
        &share_dir,
        &["--peers", "0", "--downloads", &share],
        &[],
    );
    let magnet = support::magnet_for(&data, "meshed.bin", &[a.addr, b.addr]);
    let id = started_download(&relay.must(&format!("get {magnet}")));
    wait_done(&relay, id, WAIT);
    relay.must("rescan");
    wait_hashed(&relay, "meshed.bin");

    // Told only of the relay, the getter hears of a and b from it.
    let getter = Servent::start("getter", &["--peers", "0"], &[]);
    let magnet = support::magnet_for(&data, "meshed.bin", &[relay.addr]);
    let id = started_download(&getter.must(&format!("get {magnet}")));
    let path = wait_done(&getter, id, WAIT);
    same_bytes(&path, &data);
    let info = download(&getter, id).expect("the download");
    let meshed: Vec<&str> = info["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter(|s| s["origin"] == "mesh")
        .filter_map(|s| s["addr"].as_str())
        .collect();
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    assert!(
        meshed.contains(&a_addr.as_str()) && meshed.contains(&b_addr.as_str()),
        "a and b learned through the relay's X-Alt: {info}"
    );
    assert!(
        !meshed.contains(&getter.addr.to_string().as_str()),
        "never itself: {info}"
    );
}

/// A magnet with the file's Tiger root (a bitprint `xt`).
fn magnet_with_root(data: &[u8], name: &str, sources: &[std::net::SocketAddr]) -> String {
    use sha1::{Digest, Sha1};
    hazel_protocol::magnet::Magnet {
        sha1: Some(Sha1::digest(data).into()),
        tiger: Some(hazel_protocol::thex::root_of(data)),
        name: Some(name.to_string()),
        size: Some(data.len() as u64),
        sources: sources.to_vec(),
    }
    .to_link()
}

fn source_row(info: &Value, addr: std::net::SocketAddr) -> Value {
    info["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["addr"] == addr.to_string()).cloned())
        .unwrap_or_else(|| panic!("no source {addr} in {info}"))
}

#[test]
fn a_source_serving_wrong_bytes_is_caught_by_the_tiger_tree_and_dropped() {
    let data = content(6 * 1024 * 1024, 8);
    let liar = support::HttpSource::start(data.clone(), support::Behaviour::Corrupt);
    let honest: Vec<Servent> = (0..2)
        .map(|i| Servent::start(&format!("h{i}"), &["--peers", "0"], &[("treed.bin", &data)]))
        .collect();
    // Each honest source has its tree before the download starts.
    for h in &honest {
        assert!(wait_until(WAIT, || h.must("shares")["list"]
            .as_array()
            .is_some_and(|l| l.iter().any(|f| f["tiger"].is_string()))));
    }
    let getter = Servent::start(
        "getter",
        &["--peers", "0", "--sources-per-download", "3"],
        &[],
    );
    let magnet = magnet_with_root(
        &data,
        "treed.bin",
        &[liar.addr, honest[0].addr, honest[1].addr],
    );
    let id = started_download(&getter.must(&format!("get {magnet}")));
    let path = wait_done(&getter, id, Duration::from_secs(60));
    same_bytes(&path, &data);
    let info = download(&getter, id).expect("the download");
    assert_eq!(info["verification"], "tiger tree and sha1", "{info}");
    assert_eq!(source_row(&info, liar.addr)["state"], "dropped", "{info}");
    for h in &honest {
        assert_ne!(source_row(&info, h.addr)["state"], "dropped", "{info}");
    }
    let log = std::fs::read_to_string(getter.data_dir.with_extension("log")).unwrap_or_default();
    assert!(
        log.contains(&format!("from {} failed the Tiger tree", liar.addr)),
        "caught at a range, not at the end:\n{}",
        getter.log()
    );
    assert!(
        !log.contains("SHA-1 did not match"),
        "nothing wrong reached the whole-file check:\n{}",
        getter.log()
    );
}

#[test]
fn without_a_tree_a_source_serving_wrong_bytes_is_found_and_dropped() {
    let data = content(3 * 1024 * 1024, 9);
    let liar = support::HttpSource::start(data.clone(), support::Behaviour::Corrupt);
    let honest = support::HttpSource::start(data.clone(), support::Behaviour::Honest);
    let getter = Servent::start("getter", &["--peers", "0"], &[]);
    let magnet = support::magnet_for(&data, "no tree.bin", &[liar.addr, honest.addr]);
    let id = started_download(&getter.must(&format!("get {magnet}")));
    let path = wait_done(&getter, id, Duration::from_secs(60));
    same_bytes(&path, &data);
    let info = download(&getter, id).expect("the download");
    assert_eq!(info["verification"], "sha1", "{info}");
    assert_eq!(source_row(&info, liar.addr)["state"], "dropped", "{info}");
    assert_ne!(source_row(&info, honest.addr)["state"], "dropped", "{info}");
}

#[test]
fn a_firewalled_source_is_reached_through_its_push_proxy_without_an_overlay_route() {
    let data = content(1024 * 1024 + 77, 10);
    let proxy = Servent::start("proxy", &["--peers", "0"], &[]);
    let hidden = Servent::start(
        "hidden",
        &[
            "--peers",
            "0",
            "--firewalled",
            "--connect",
            &proxy.addr.to_string(),
        ],
        &[("proxied file.bin", &data)],
    );
    // The firewalled leaf asks its peer to be its push proxy, which acknowledges.
    assert!(wait_until(WAIT, || num(
        &hidden.stats(),
        "proxy.proxy_acks_received"
    ) >= 1));
    assert_eq!(num(&proxy.stats(), "proxy.proxying_for"), 1);
    wait_hashed(&hidden, "proxied file.bin");
    let getter = Servent::start(
        "getter",
        &["--peers", "0", "--connect", &proxy.addr.to_string()],
        &[],
    );
    getter.wait_established(1);
    let result = find(&getter, "proxied file", "proxied file.bin");
    let row = getter
        .must("results")
        .as_array()
        .and_then(|r| r.iter().find(|h| num(h, "id") == result).cloned())
        .expect("the result");
    assert_eq!(row["needs_push"], true, "{row}");
    assert_eq!(
        row["push_proxies"],
        serde_json::json!([proxy.addr.to_string()]),
        "the hit names its push proxy: {row}"
    );
    // No overlay route any more: only the proxy can carry the Push.
    let link = num(&getter.must("peers")[0], "id");
    getter.must(&format!("disconnect {link}"));
    assert!(wait_until(WAIT, || getter.established() == 0));
    let id = started_download(&getter.must(&format!("get {result}")));
    let path = wait_done(&getter, id, WAIT);
    same_bytes(&path, &data);
    assert_eq!(
        num(&proxy.stats(), "proxy.relays"),
        1,
        "relayed once by the proxy"
    );
    let info = download(&getter, id).expect("the download");
    assert_eq!(info["sources"][0]["push"], true, "{info}");
}

#[test]
fn a_push_proxy_refuses_strangers_and_bad_requests() {
    let proxy = Servent::start("proxy", &["--peers", "0"], &[]);
    let ask = |target: &str, node: Option<&str>| -> String {
        let mut stream = std::net::TcpStream::connect(proxy.addr).expect("connect");
        let node = node.map(|n| format!("X-Node: {n}\r\n")).unwrap_or_default();
        std::io::Write::write_all(
            &mut stream,
            format!("GET {target} HTTP/1.1\r\n{node}Connection: close\r\n\r\n").as_bytes(),
        )
        .expect("send");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        answer.lines().next().unwrap_or_default().to_string()
    };
    let guid = data_encoding::BASE32_NOPAD.encode(&[9u8; 16]);
    let target = format!("/gnutella/push-proxy?ServerId={guid}&file=1");
    assert!(ask(&target, Some("127.0.0.1:1234")).starts_with("HTTP/1.1 410 "));
    assert!(ask(&target, None).starts_with("HTTP/1.1 400 "));
    assert!(ask(&target, Some("0.0.0.0:0")).starts_with("HTTP/1.1 400 "));
    assert_eq!(num(&proxy.stats(), "proxy.relays"), 0);
}

/// `retry`, `pause`, `resume` and `cancel` as a user sees them: a download
/// whose only source answers 404 fails saying why and starts again on
/// `retry` once the source has the file; a paused download fetches nothing
/// until `resume`; a finished file never replaces one already in the
/// downloads folder; `cancel` removes the partial file and its state.
#[test]
fn retry_pause_resume_and_cancel_do_what_they_say() {
    let data = content(3 * 1024 * 1024, 7);
    let source = support::HttpSource::start(data.clone(), support::Behaviour::Status(404));
    let magnet = support::magnet_for(&data, "song.ogg", &[source.addr]);
    let temp = tempfile::tempdir().expect("temp");
    let (data_dir, share_dir) = (temp.path().join("data"), temp.path().join("share"));
    // Something the user already has under the same name.
    let downloads = data_dir.join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads folder");
    std::fs::write(downloads.join("song.ogg"), b"the user's own song").expect("own file");
    let getter = Servent::start_in("getter", &data_dir, &share_dir, &["--peers", "0"], &[]);

    let id = started_download(&getter.must(&format!("get {magnet}")));
    let mut last = Value::Null;
    let failed = wait_until(WAIT, || {
        last = download(&getter, id).unwrap_or(Value::Null);
        last["state"] == "failed"
    });
    assert!(
        failed,
        "a 404 from the only source fails the download: {last}"
    );
    let why = last["last_error"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("no source left"), "{last}");

    // The source gets the file; `retry` forgives it.
    source.behave(support::Behaviour::Throttled(1024 * 1024));
    getter.must(&format!("retry {id}"));
    assert!(
        wait_until(WAIT, || download(&getter, id)
            .is_some_and(|d| num(&d, "done") >= 512 * 1024)),
        "the retried download runs: {:?}",
        download(&getter, id)
    );

    // Paused: nothing more arrives, from the source or on disk.
    getter.must(&format!("pause {id}"));
    assert_eq!(download(&getter, id).expect("listed")["state"], "paused");
    std::thread::sleep(Duration::from_millis(500));
    let (done, served) = (
        num(&download(&getter, id).expect("listed"), "done"),
        source.served(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let paused = download(&getter, id).expect("listed");
    assert_eq!(
        num(&paused, "done"),
        done,
        "a paused download grew: {paused}"
    );
    assert!(
        source.served() - served < 64 * 1024,
        "the source kept sending to a paused download: {} bytes",
        source.served() - served
    );
    assert!(done < data.len() as u64, "paused before the end");

    getter.must(&format!("resume {id}"));
    let path = wait_done(&getter, id, Duration::from_secs(60));
    same_bytes(&path, &data);
    assert_eq!(
        path,
        downloads.join("song (1).ogg"),
        "the user's file kept its name"
    );
    assert_eq!(
        std::fs::read(downloads.join("song.ogg")).expect("own file"),
        b"the user's own song"
    );

    // Cancel half way: the partial file and its state go, and so does the row.
    let other = content(4 * 1024 * 1024, 8);
    let slow = support::HttpSource::start(other.clone(), support::Behaviour::Throttled(512 * 1024));
    let magnet = support::magnet_for(&other, "other.bin", &[slow.addr]);
    let id = started_download(&getter.must(&format!("get {magnet}")));
    assert!(wait_until(WAIT, || download(&getter, id)
        .is_some_and(|d| num(&d, "done") > 0)));
    let part = data_dir.join("incomplete/other.bin.part");
    assert!(part.exists(), "a partial file while it runs");
    getter.must(&format!("cancel {id}"));
    assert!(
        wait_until(WAIT, || !part.exists()
            && !data_dir.join("incomplete/other.bin.state").exists()),
        "cancel leaves the partial file or its state behind"
    );
    assert!(
        download(&getter, id).is_none(),
        "a cancelled download is listed"
    );
    assert!(!downloads.join("other.bin").exists());
}
