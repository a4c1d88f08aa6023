//! The upload side against curl, a client we did not write: whole files by
//! index and by URN, every single-range form, HEAD, keep-alive, the error
//! statuses (404, 416, 503 with Retry-After), path-escape attempts and links
//! out of a shared folder.
//!
//! curl must be installed (`.ci/run` installs it): without it these tests
//! fail, they do not pass silently.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use support::{num, wait_until, Servent, WAIT};

/// Content whose every byte depends on its offset.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// What curl reports for one invocation.
struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
    stderr: String,
}

/// Runs curl with `args` (a 10 s cap) and returns the last response's
/// status, its headers and the body.
fn curl(args: &[&str]) -> Reply {
    let dir = tempfile::tempdir().expect("temp");
    let headers_path = dir.path().join("headers");
    let body_path = dir.path().join("body");
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--dump-header",
        ])
        .arg(&headers_path)
        .arg("--output")
        .arg(&body_path)
        .args(["--write-out", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl is needed by these tests (apt-get install curl)");
    let status = String::from_utf8_lossy(&output.stdout);
    // Several URLs print several codes: the last one counts.
    let status = status
        .get(status.len().saturating_sub(3)..)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = std::fs::read_to_string(&headers_path).unwrap_or_default();
    // With several responses the header file holds each head in turn: keep the last.
    let headers = headers
        .rsplit("HTTP/")
        .next()
        .map(|h| format!("HTTP/{h}"))
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body: std::fs::read(&body_path).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Starts a servent sharing `files` and waits until each is hashed; the
/// servent and each file's (index, urn).
fn sharing(args: &[&str], files: &[(&str, &[u8])]) -> (Servent, Vec<(u64, String)>) {
    let servent = Servent::start("sharer", args, files);
    let mut found = Vec::new();
    let ok = wait_until(WAIT, || {
        let shares = servent.must("shares");
        let list = shares["list"].as_array().cloned().unwrap_or_default();
        found = files
            .iter()
            .filter_map(|(name, _)| {
                let file = list.iter().find(|f| f["name"] == *name)?;
                Some((num(file, "index"), file["sha1"].as_str()?.to_string()))
            })
            .collect();
        found.len() == files.len()
    });
    assert!(
        ok,
        "files not shared and hashed in time:\n{}",
        servent.log()
    );
    (servent, found)
}

#[test]
fn curl_gets_whole_files_ranges_and_heads() {
    let data = content(300_000);
    let (sharer, files) = sharing(&["--peers", "0"], &[("Some Song.mp3", &data)]);
    let (index, urn) = files[0].clone();
    let by_name = format!("http://{}/get/{index}/Some%20Song.mp3", sharer.addr);
    let by_urn = format!("http://{}/uri-res/N2R?{urn}", sharer.addr);

    for url in [&by_name, &by_urn] {
        let reply = curl(&[url]);
        assert_eq!(
            reply.status, 200,
            "{url}: {}{}",
            reply.headers, reply.stderr
        );
        assert_eq!(reply.body, data, "{url}: the whole file, byte for byte");
        assert_eq!(header(&reply, "Content-Length"), Some("300000"));
    }

    // bytes=a-b, bytes=a- and bytes=-n.
    for (range, first, last) in [
        ("0-99", 0usize, 99usize),
        ("1000-1999", 1000, 1999),
        ("299990-", 299_990, 299_999),
        ("-10", 299_990, 299_999),
        ("250000-999999", 250_000, 299_999),
    ] {
        let reply = curl(&["--range", range, &by_name]);
        assert_eq!(reply.status, 206, "range {range}: {}", reply.headers);
        assert_eq!(reply.body, data[first..=last], "range {range}");
        assert_eq!(
            header(&reply, "Content-Range"),
            Some(format!("bytes {first}-{last}/300000").as_str()),
            "range {range}"
        );
    }
    // Several ranges at once are not served piecewise: the whole file, as RFC 9110 allows.
    let reply = curl(&["--range", "0-9,20-29", &by_name]);
    assert_eq!(reply.status, 200, "{}", reply.headers);
    assert_eq!(reply.body, data);

    // HEAD: the length, no body.
    let reply = curl(&["--head", &by_urn]);
    assert_eq!(reply.status, 200, "{}", reply.headers);
    assert_eq!(header(&reply, "Content-Length"), Some("300000"));
    // curl writes a HEAD's head as its output: nothing may follow it.
    assert!(
        reply.body.ends_with(b"\r\n\r\n") && reply.body.len() < 1000,
        "HEAD has no body: {:?}",
        String::from_utf8_lossy(&reply.body[..reply.body.len().min(2000)])
    );
    assert!(
        header(&reply, "X-Gnutella-Content-URN").is_some_and(|u| u.eq_ignore_ascii_case(&urn)),
        "{}",
        reply.headers
    );
}

#[test]
fn curl_reuses_one_connection_for_several_requests() {
    let data = content(50_000);
    let (sharer, files) = sharing(&["--peers", "0"], &[("a.bin", &data)]);
    let url = format!("http://{}/get/{}/a.bin", sharer.addr, files[0].0);
    let reply = curl(&[
        "--verbose",
        "--range",
        "0-9",
        &url,
        "--range",
        "10-19",
        &url,
    ]);
    assert_eq!(reply.status, 206, "{}", reply.stderr);
    assert!(
        reply.stderr.contains("Re-using existing connection")
            || reply.stderr.contains("Reusing existing connection"),
        "curl opened a second connection:\n{}",
        reply.stderr
    );
}

#[test]
fn curl_sees_404_416_and_503_with_retry_after() {
    let big = content(8 << 20);
    let (sharer, files) = sharing(
        &["--peers", "0", "--upload-slots", "1"],
        &[("small.txt", b"0123456789"), ("big.bin", &big)],
    );
    let small = files[0].0;
    let big_index = files[1].0;

    let reply = curl(&[&format!(
        "http://{}/get/{}/nothing.txt",
        sharer.addr,
        small + 100
    )]);
    assert_eq!(reply.status, 404, "{}", reply.headers);
    let reply = curl(&[&format!(
        "http://{}/uri-res/N2R?urn:sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        sharer.addr
    )]);
    assert_eq!(reply.status, 404, "{}", reply.headers);

    let reply = curl(&[
        "--range",
        "10-20",
        &format!("http://{}/get/{small}/small.txt", sharer.addr),
    ]);
    assert_eq!(reply.status, 416, "{}", reply.headers);
    assert_eq!(header(&reply, "Content-Range"), Some("bytes */10"));

    // Take the one slot with a client that reads nothing of an 8 MiB body.
    let mut holder = TcpStream::connect(sharer.addr).expect("connect");
    holder
        .write_all(format!("GET /get/{big_index}/big.bin HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .expect("request");
    let mut first = [0u8; 12];
    holder
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    holder
        .read_exact(&mut first)
        .expect("the holder's reply begins");
    assert_eq!(&first, b"HTTP/1.1 200");
    let reply = curl(&[&format!("http://{}/get/{small}/small.txt", sharer.addr)]);
    assert_eq!(reply.status, 503, "{}", reply.headers);
    let retry: u64 = header(&reply, "Retry-After")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {}", reply.headers));
    assert!(retry > 0 && retry <= 3600, "{retry}");

    // The slot comes back when the holder goes.
    drop(holder);
    let freed = wait_until(WAIT, || {
        curl(&[&format!("http://{}/get/{small}/small.txt", sharer.addr)]).status == 200
    });
    assert!(freed, "the slot was not freed:\n{}", sharer.log());
}

#[test]
fn curl_cannot_escape_the_shared_folder() {
    let outside = tempfile::tempdir().expect("temp");
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, b"SECRET-OUTSIDE-THE-SHARE").expect("secret");
    let sharer = Servent::start("sharer", &["--peers", "0"], &[("song.mp3", b"SONG")]);
    std::os::unix::fs::symlink(&secret, sharer.share_dir.join("link.mp3")).expect("link");
    std::os::unix::fs::symlink(outside.path(), sharer.share_dir.join("outside")).expect("link");
    sharer.must("rescan");
    assert!(wait_until(WAIT, || num(
        &sharer.must("shares"),
        "scan.scans"
    ) >= 2));

    let secret_path = secret.display().to_string();
    let dir = outside.path().display().to_string();
    let attempts = [
        "/get/0/../../../../etc/passwd".to_string(),
        "/get/0/..%2f..%2f..%2fetc%2fpasswd".to_string(),
        "/get/1/link.mp3".to_string(),
        "/get/2/link.mp3".to_string(),
        "/get/1/outside/secret.txt".to_string(),
        format!("/get/0/{secret_path}"),
        format!("/get/0/..{secret_path}"),
        format!("/{secret_path}"),
        format!("/{dir}/secret.txt"),
        "/uri-res/N2R?../../../etc/passwd".to_string(),
        "/uri-res/N2R?urn:sha1:../../etc/passwd".to_string(),
        "/%2e%2e/%2e%2e/etc/passwd".to_string(),
    ];
    for path in attempts {
        let reply = curl(&["--path-as-is", &format!("http://{}{path}", sharer.addr)]);
        let body = String::from_utf8_lossy(&reply.body);
        assert!(
            !body.contains("SECRET") && !body.contains("root:"),
            "{path}: {} served {body}",
            reply.status
        );
        assert!(
            matches!(reply.status, 400 | 404),
            "{path}: {} {}",
            reply.status,
            reply.headers
        );
    }
    // The servent still serves what it shares.
    let index = num(&sharer.must("shares")["list"][0], "index");
    let reply = curl(&[&format!("http://{}/get/{index}/song.mp3", sharer.addr)]);
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"SONG"[..]));
}
