//! A download through a real firewall. Two network namespaces joined by a
//! veth pair; an nftables rule in the sharer's namespace drops every inbound
//! TCP connection (replies to what the sharer opens still pass). The sharer
//! joins the overlay by connecting out and is *not* told it is firewalled:
//! its hits advertise an address nobody can reach. The test shows a direct
//! connection to it failing, then the download completing through a Push
//! and the sharer's GIV, byte-identical.
//!
//! Needs root (namespaces, nftables) and the `ip` and `nft` tools. It is
//! `#[ignore]`d in the ordinary `cargo test`; `.ci/run` runs it as root with
//! `--ignored`. Without root it fails saying so: it never passes unearned.
//! The namespaces are removed at the end, also when the test fails.
//! (`e2e_downloads` runs the same flow on loopback with `--firewalled`.)

mod support;

use std::process::Command;
use std::time::Duration;
use support::{num, wait_until, Servent, WAIT};

/// Runs a command that must succeed.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed by this test ({e})"));
    assert!(
        output.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two namespaces and the veth pair between them; removed on drop.
struct Netns {
    sharer: String,
    getter: String,
}

impl Netns {
    fn create() -> Netns {
        let tag = std::process::id() % 100_000;
        let net = Netns {
            sharer: format!("hz-share-{tag}"),
            getter: format!("hz-get-{tag}"),
        };
        // Left over by a killed run with the same pid: start clean.
        net.remove();
        run("ip", &["netns", "add", &net.sharer]);
        run("ip", &["netns", "add", &net.getter]);
        let (a, b) = (format!("hzs{tag}"), format!("hzg{tag}"));
        run(
            "ip",
            &["link", "add", &a, "type", "veth", "peer", "name", &b],
        );
        run("ip", &["link", "set", &a, "netns", &net.sharer]);
        run("ip", &["link", "set", &b, "netns", &net.getter]);
        for (ns, dev, addr) in [(&net.sharer, &a, SHARER_NET), (&net.getter, &b, GETTER_NET)] {
            run("ip", &["-n", ns, "addr", "add", addr, "dev", dev]);
            run("ip", &["-n", ns, "link", "set", dev, "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        // The firewall: inbound connections to the sharer are dropped.
        let rules = "table inet hazel_test {\n\
             chain input {\n\
               type filter hook input priority 0; policy accept;\n\
               iifname \"lo\" accept\n\
               ct state established,related accept\n\
               meta l4proto tcp ct state new drop\n\
             }\n\
           }\n";
        let mut nft = Command::new("ip")
            .args(["netns", "exec", &net.sharer, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft is needed by this test (apt-get install nftables)");
        {
            use std::io::Write;
            let mut stdin = nft.stdin.take().expect("stdin");
            stdin.write_all(rules.as_bytes()).expect("nft rules");
        }
        assert!(nft.wait().expect("nft").success(), "nft refused the rules");
        net
    }

    fn remove(&self) {
        for ns in [&self.sharer, &self.getter] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace also deletes the veth pair.
        self.remove();
    }
}

const SHARER_IP: &str = "10.231.7.1";
const GETTER_IP: &str = "10.231.7.2";
const SHARER_NET: &str = "10.231.7.1/24";
const GETTER_NET: &str = "10.231.7.2/24";

fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 253) as u8 ^ (i >> 12) as u8)
        .collect()
}

#[test]
#[ignore = "needs root: run by .ci/run as root with --ignored"]
fn a_download_crosses_a_real_firewall_through_push_and_giv() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (network namespaces and nftables); run it as root, as .ci/run does"
    );
    let net = Netns::create();
    let data = content(2 * 1024 * 1024 + 11);
    let getter = Servent::start_in_netns("getter", &net.getter, GETTER_IP, &["--peers", "0"], &[]);
    let sharer = Servent::start_in_netns(
        "sharer",
        &net.sharer,
        SHARER_IP,
        &["--peers", "0", "--connect", &getter.addr.to_string()],
        &[("through the wall.bin", &data)],
    );
    getter.wait_established(1);

    // A direct connection to the sharer fails.
    let direct = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.getter,
            "curl",
            "--silent",
            "--max-time",
            "3",
        ])
        .arg(format!("http://{}/", sharer.addr))
        .output()
        .expect("curl is needed by this test");
    assert!(
        !direct.status.success() && matches!(direct.status.code(), Some(7 | 28)),
        "the firewall let a connection in: curl exited {:?}",
        direct.status.code()
    );

    // The sharer's hits advertise that unreachable address, without the push flag.
    assert!(wait_until(WAIT, || sharer.must("shares")["list"]
        .as_array()
        .is_some_and(|l| l.iter().any(|f| f["sha1"].is_string()))));
    let search = getter.must("search through the wall");
    let search_id = num(&search, "search_id");
    let mut result = None;
    assert!(wait_until(WAIT, || {
        result = getter
            .must(&format!("results {search_id}"))
            .as_array()
            .and_then(|r| r.first().cloned());
        result.is_some()
    }));
    let result = result.expect("a result");
    assert_eq!(result["addr"], sharer.addr.to_string(), "{result}");
    assert_eq!(result["needs_push"], false, "{result}");

    let reply = getter.must(&format!("get {}", num(&result, "id")));
    let id = num(&reply["downloads"][0], "download");
    let mut last = serde_json::Value::Null;
    let done = wait_until(Duration::from_secs(90), || {
        last = getter.must("transfers")["downloads"]
            .as_array()
            .and_then(|d| d.iter().find(|d| num(d, "id") == id).cloned())
            .unwrap_or_default();
        last["state"] == "done" || last["state"] == "failed"
    });
    assert!(done && last["state"] == "done", "{last}\n{}", getter.log());
    let got = std::fs::read(last["path"].as_str().expect("path")).expect("file");
    assert!(got == data, "the downloaded bytes differ");
    assert_eq!(
        last["sources"][0]["push"], true,
        "reached through a Push after the direct connect failed: {last}"
    );
    drop(sharer);
    drop(getter);
    drop(net);
}
