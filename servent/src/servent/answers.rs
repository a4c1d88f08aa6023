//! The shell's commands, answered from the servent's parts: each reply is a
//! kind plus its facts as JSON (rendered as text by the shell when asked).

use std::time::Instant;

use serde_json::json;

use super::Servent;
use crate::core::ConnectOutcome;
use crate::shell::{Command, Reply, Response};

/// Most files listed by `shares` (the totals always count all of them).
const SHARES_LISTED: usize = 1000;
/// Most hosts listed by `hosts`.
const HOSTS_LISTED: usize = 1000;

fn to_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

impl Servent {
    /// One command (never `Quit`: the event loop's handler takes that).
    pub(super) fn answer(&mut self, command: Command, now: Instant) -> Response {
        let reply = match command {
            Command::Connect(addr) => match self.core.connect(addr, now) {
                ConnectOutcome::Dialling => Reply::message(format!("connecting to {addr}")),
                ConnectOutcome::Ourselves => {
                    return Response::error(format!("{addr} is this servent"))
                }
                ConnectOutcome::AlreadyConnected => {
                    return Response::error(format!("already connected (or connecting) to {addr}"))
                }
                ConnectOutcome::ShuttingDown => {
                    return Response::error("the servent is shutting down")
                }
            },
            Command::ConnectHost(host, _) => {
                // Resolved before it reaches the loop; never block here on DNS.
                return Response::error(format!("{host} was not resolved"));
            }
            Command::Disconnect(id) => {
                if !self.core.disconnect(id, now) {
                    return Response::error(format!("no connection {id}"));
                }
                Reply::message(format!("disconnecting {id}"))
            }
            Command::Peers => Reply::new("peers", to_value(&self.core.peers(now))),
            Command::Search(words) => {
                let text = words.join(" ");
                let id = self.core.search(&text, now);
                let sent_to = self.core.established_ids().len();
                Reply::new(
                    "search",
                    json!({ "search_id": id, "text": text, "sent_to": sent_to }),
                )
            }
            Command::Results(search) => {
                if let Some(id) = search {
                    if !self.core.searches().iter().any(|(s, _)| *s == id) {
                        return Response::error(format!("no search {id}"));
                    }
                }
                Reply::new("results", to_value(&self.core.results(search)))
            }
            Command::Shares => self.shares_reply(),
            Command::Rescan => match &self.scanner {
                Some(scanner) => {
                    scanner.rescan();
                    Reply::message("rescanning")
                }
                None => return Response::error("the library scanner is not running"),
            },
            Command::Stats => {
                let mut stats = to_value(&self.core.stats());
                if let serde_json::Value::Object(map) = &mut stats {
                    map.insert(
                        "uptime_secs".into(),
                        json!(now.saturating_duration_since(self.started).as_secs()),
                    );
                }
                Reply::new("stats", stats)
            }
            Command::Hosts => {
                let hosts: Vec<String> = self
                    .core
                    .host_cache()
                    .recent(HOSTS_LISTED)
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                Reply::new("hosts", json!(hosts))
            }
            Command::Help => Reply::help(),
            Command::Quit => Reply::message("bye"),
        };
        Response::ok(reply)
    }

    fn shares_reply(&self) -> Reply {
        let library = self.core.library();
        let (files, kbytes) = library.totals();
        let listed: Vec<serde_json::Value> = library
            .files()
            .iter()
            .take(SHARES_LISTED)
            .map(|f| {
                json!({
                    "index": f.index,
                    "name": f.name,
                    "size": f.size,
                    "sha1": f.sha1.map(|d| hazel_protocol::huge::sha1_urn(&d)),
                })
            })
            .collect();
        let scan = self.scanner.as_ref().map(|s| s.stats());
        Reply::new(
            "shares",
            json!({
                "files": files,
                "kbytes": kbytes,
                "pending_hashes": library.pending_hashes(),
                "scan": scan,
                "list": listed,
            }),
        )
    }
}
