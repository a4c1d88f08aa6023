//! The shell's commands, answered from the servent's parts: each reply is a
//! kind plus its facts as JSON (rendered as text by the shell when asked).

use std::time::Instant;

use serde_json::json;

use hazel_protocol::magnet::Magnet;

use super::Servent;
use crate::core::napster::session::Identity;
use crate::core::ConnectOutcome;
use crate::shell::{Command, GetTarget, IndexCommand, Networks, Reply, Response};

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
            Command::Search(request) => {
                let text = request.words.join(" ");
                let (id, sent_to) = if request.networks == Networks::Index {
                    (self.core.start_index_only_search(&text), 0)
                } else {
                    let id = self.core.search(&text, now);
                    (id, self.core.established_ids().len())
                };
                let index_servers = if request.networks == Networks::Gnutella {
                    0
                } else {
                    self.core.index_search(id, &text, &request.index, now)
                };
                Reply::new(
                    "search",
                    json!({
                        "search_id": id,
                        "text": text,
                        "sent_to": sent_to,
                        "index_servers": index_servers,
                        "networks": match request.networks {
                            Networks::Both => "both",
                            Networks::Index => "index",
                            Networks::Gnutella => "gnutella",
                        },
                    }),
                )
            }
            Command::Index(IndexCommand::Connect {
                addr,
                nick,
                password,
            }) => {
                let identity = Identity {
                    nick: nick.clone(),
                    password,
                    data_port: self.napster_data_port,
                    link_speed: crate::run::LINK_SPEED,
                };
                match self.core.index_connect(addr, identity, now) {
                    Ok(()) => Reply::message(format!("logging in to {addr} as {nick}")),
                    Err(e) => return Response::error(e),
                }
            }
            Command::Index(IndexCommand::Disconnect(addr)) => {
                let left = self.core.index_disconnect(addr);
                if left.is_empty() {
                    return Response::error(match addr {
                        Some(addr) => format!("no session with {addr}"),
                        None => "no index session".to_string(),
                    });
                }
                let names: Vec<String> = left.iter().map(|a| a.to_string()).collect();
                Reply::message(format!("left {}", names.join(", ")))
            }
            Command::Index(IndexCommand::Status) => {
                Reply::new("index", to_value(&self.core.index_status(now)))
            }
            Command::Browse(nick) => match self.core.index_browse(&nick) {
                Some(id) => Reply::new("browse", json!({ "search_id": id, "nick": nick })),
                None => return Response::error("not logged in to any index (`index status`)"),
            },
            Command::Results(search) => {
                if let Some(id) = search {
                    if !self.core.searches().iter().any(|(s, _)| *s == id) {
                        return Response::error(format!("no search {id}"));
                    }
                }
                Reply::new("results", to_value(&self.core.results(search)))
            }
            Command::Shares { magnets } => self.shares_reply(magnets),
            Command::Get(target) => return self.get(target, now),
            Command::Magnet(result) => match self.core.magnet_for_result(result) {
                Ok(link) => Reply::new("magnet", json!({ "result": result, "magnet": link })),
                Err(e) => return Response::error(e),
            },
            Command::Transfers => Reply::new(
                "transfers",
                json!({
                    "downloads": to_value(&self.core.downloads(now)),
                    "uploads": to_value(&self.uploads.list(now)),
                    "napster_uploads": to_value(&self.napster_port.list()),
                }),
            ),
            Command::Pause(id) => match self.core.pause_download(id, now) {
                Ok(()) => Reply::message(format!("download {id} paused")),
                Err(e) => return Response::error(e),
            },
            Command::Resume(id) => match self.core.resume_download(id, now) {
                Ok(()) => Reply::message(format!("download {id} resumed")),
                Err(e) => return Response::error(e),
            },
            Command::Retry(id) => match self.core.retry_download(id, now) {
                Ok(()) => Reply::message(format!("download {id} restarted")),
                Err(e) => return Response::error(e),
            },
            Command::Cancel(id) => match self.core.cancel_download(id, now) {
                Ok(()) => {
                    Reply::message(format!("download {id} cancelled, its partial file removed"))
                }
                Err(e) => return Response::error(e),
            },
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
                    map.insert("udp".into(), to_value(self.core.udp_stats()));
                    map.insert("bootstrap".into(), to_value(&self.core.bootstrap_stats()));
                    map.insert("proxy".into(), to_value(self.core.proxy_stats()));
                }
                Reply::new("stats", stats)
            }
            Command::Hosts => {
                let hosts = self.core.host_cache().list(HOSTS_LISTED, now);
                Reply::new("hosts", json!(hosts))
            }
            Command::Help => Reply::help(),
            Command::Quit => Reply::message("bye"),
        };
        Response::ok(reply)
    }

    /// `get`: one download per result's file (results with the same URN
    /// are one download), or one for a URN or a magnet link.
    fn get(&mut self, target: GetTarget, now: Instant) -> Response {
        let outcomes: Vec<Result<(u64, bool), String>> = match target {
            GetTarget::Results(ids) => ids
                .into_iter()
                .map(|id| self.core.get_result(id, now))
                .collect(),
            GetTarget::Urn { sha1, name } => vec![self.core.get_urn(sha1, name, now)],
            GetTarget::Magnet(magnet) => vec![self.core.get_magnet(&magnet, now)],
        };
        let mut started = Vec::new();
        let mut errors = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok((id, new)) => started.push(json!({ "download": id, "new": new })),
                Err(e) => errors.push(e),
            }
        }
        if started.is_empty() {
            return Response::error(errors.join("; "));
        }
        Response::ok(Reply::new(
            "get",
            json!({ "downloads": started, "errors": errors }),
        ))
    }

    /// A magnet link for a shared file (our address as its source, unless
    /// firewalled).
    fn magnet_for(&self, file: &crate::core::shares::SharedFile) -> Option<String> {
        let config = self.core.config();
        let sources = if config.firewalled || config.listen_addr.ip().is_unspecified() {
            Vec::new()
        } else {
            vec![config.listen_addr]
        };
        Some(
            Magnet {
                sha1: Some(file.sha1?),
                tiger: file.tiger,
                name: Some(file.name.clone()),
                size: Some(file.size),
                sources,
            }
            .to_link(),
        )
    }

    fn shares_reply(&self, magnets: bool) -> Reply {
        let library = self.core.library();
        let (files, kbytes) = library.totals();
        let listed: Vec<serde_json::Value> = library
            .files()
            .iter()
            .take(SHARES_LISTED)
            .map(|f| {
                let mut row = json!({
                    "index": f.index,
                    "name": f.name,
                    "size": f.size,
                    "sha1": f.sha1.map(|d| hazel_protocol::huge::sha1_urn(&d)),
                    "tiger": f.tiger.map(|t| hazel_protocol::thex::tiger_base32(&t)),
                    "hits": self.core.hits_for_file(f.index),
                    "uploads": self.uploads.uploads_of_file(f.index),
                });
                if magnets {
                    row["magnet"] = json!(self.magnet_for(f));
                }
                row
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
