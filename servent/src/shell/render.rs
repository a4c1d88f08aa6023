//! Text form of a [`Reply`]: tables for lists of records, indented
//! `key: value` lines for records, the plain string for messages.

use super::Reply;
use hazel_protocol::text::escape;
use serde_json::{Map, Value};

/// Renders a reply for a person reading a terminal. Never ends with a newline.
pub fn render_text(reply: &Reply) -> String {
    match (reply.kind.as_str(), &reply.data) {
        ("search", Value::Object(map)) => match map.get("search_id") {
            Some(id)
                if map.get("networks").and_then(Value::as_str) == Some("index")
                    && map.get("index_servers").and_then(Value::as_u64) == Some(0) =>
            {
                format!(
                    "search {} started, but no index session is online: it reached nobody \
                     (log in to one with `index connect HOST:PORT NICK`)",
                    scalar(id)
                )
            }
            Some(id)
                if map
                    .get("index_servers")
                    .and_then(Value::as_u64)
                    .is_some_and(|n| n > 0) =>
            {
                let peers = map.get("sent_to").and_then(Value::as_u64).unwrap_or(0);
                let servers = map
                    .get("index_servers")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                format!(
                    "search {} sent to {peers} peer{} and {servers} index server{}; \
                     `results {}` lists what comes back",
                    scalar(id),
                    if peers == 1 { "" } else { "s" },
                    if servers == 1 { "" } else { "s" },
                    scalar(id)
                )
            }
            Some(id) => match map.get("sent_to").and_then(Value::as_u64) {
                Some(0) => format!(
                    "search {} started, but no peer is connected: it reached nobody \
                     (connect to one with `connect HOST:PORT`)",
                    scalar(id)
                ),
                Some(n) => format!(
                    "search {} sent to {n} peer{}; `results {}` lists what comes back",
                    scalar(id),
                    if n == 1 { "" } else { "s" },
                    scalar(id)
                ),
                None => format!("search {} started", scalar(id)),
            },
            None => render_value(&reply.data),
        },
        ("stats", Value::Object(map)) => render_stats(map),
        ("transfers", Value::Object(map)) => render_transfers(map),
        ("get", Value::Object(map)) => render_get(map),
        ("index", Value::Array(rows)) => render_index(rows),
        ("magnet", Value::Object(map)) => map.get("magnet").map(scalar).unwrap_or_default(),
        ("shares", Value::Object(map)) => render_shares(map),
        // The table shows what fits a terminal; `--json` has every field.
        ("peers", Value::Array(rows)) => chosen_columns(rows, PEER_COLUMNS),
        ("results", Value::Array(rows)) => chosen_columns(rows, RESULT_COLUMNS),
        _ => render_value(&reply.data),
    }
}

/// A byte count for people: `512 B`, `4.0 KiB`, `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Seconds as `3d 4h`, `2h 5m`, `4m 10s` or `9s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn num(map: &Map<String, Value>, key: &str) -> u64 {
    map.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `stats`: what the servent did, in sentences and one table.
fn render_stats(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    if let Some(uptime) = map.get("uptime_secs").and_then(Value::as_u64) {
        out.push_str(&format!("up {}; ", human_duration(uptime)));
    }
    out.push_str(&format!(
        "{} connections ({} established), {} searches\n",
        num(map, "connections"),
        num(map, "established"),
        num(map, "searches")
    ));
    out.push_str(&format!(
        "hosts known: {}, pongs cached: {}\n\n",
        num(map, "host_cache"),
        num(map, "pong_cache")
    ));
    let kinds = ["ping", "pong", "query", "query_hit", "push", "bye", "other"];
    let titles = ["Ping", "Pong", "Query", "QueryHit", "Push", "Bye", "other"];
    let mut rows = Vec::new();
    for (key, label) in [
        ("received", "received"),
        ("forwarded", "forwarded"),
        ("originated", "sent by us"),
        ("dropped", "dropped"),
    ] {
        let Some(Value::Object(counts)) = map.get(key) else {
            continue;
        };
        let mut row = vec![label.to_string()];
        row.extend(kinds.iter().map(|k| num(counts, k).to_string()));
        rows.push(row);
    }
    let mut header = vec!["descriptors".to_string()];
    header.extend(titles.iter().map(|t| t.to_string()));
    out.push_str(&aligned(&header, &rows));
    if let Some(Value::Object(drops)) = map.get("drops_by_reason") {
        if drops.is_empty() {
            out.push_str("\nno drops\n");
        } else {
            let list: Vec<String> = drops
                .iter()
                .map(|(reason, n)| format!("{} {}", reason.replace('_', " "), scalar(n)))
                .collect();
            out.push_str(&format!("\ndrops by reason: {}\n", list.join(", ")));
        }
    }
    out.push_str(&format!(
        "routing tables: {} queries, {} pings, {} pushes seen, {} push routes ({})\n",
        num(map, "query_table"),
        num(map, "ping_table"),
        num(map, "push_table"),
        num(map, "push_routes"),
        human_bytes(num(map, "routing_memory_bytes"))
    ));
    out.push_str(&format!(
        "pings answered from the pong cache: {}; query routing messages sent: {}",
        num(map, "pings_answered_from_cache"),
        num(map, "qrp_sent")
    ));
    out
}

/// `shares`: totals, hashing progress, scanner work, then the files.
fn render_shares(map: &Map<String, Value>) -> String {
    let files = num(map, "files");
    let mut out = if files == 0 {
        "nothing shared (share a folder with --share DIR, or add files and `rescan`)".to_string()
    } else {
        format!(
            "{files} file{} shared, {}",
            if files == 1 { "" } else { "s" },
            human_bytes(num(map, "kbytes").saturating_mul(1024))
        )
    };
    let pending = num(map, "pending_hashes");
    if pending > 0 {
        out.push_str(&format!(
            "; {pending} still being hashed (searchable by name, not yet by urn)"
        ));
    }
    out.push('\n');
    if let Some(Value::Object(scan)) = map.get("scan") {
        out.push_str(&format!(
            "folders scanned {} time{}; {} file{} hashed ({} read), {} from the hash cache\n",
            num(scan, "scans"),
            if num(scan, "scans") == 1 { "" } else { "s" },
            num(scan, "files_hashed"),
            if num(scan, "files_hashed") == 1 {
                ""
            } else {
                "s"
            },
            human_bytes(num(scan, "bytes_hashed")),
            num(scan, "cache_hits")
        ));
    }
    if let Some(Value::Array(list)) = map.get("list") {
        if !list.is_empty() {
            let header: Vec<String> = ["index", "size", "hits", "uploads", "name", "urn"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|f| {
                    vec![
                        f.get("index").map(scalar).unwrap_or_default(),
                        human_bytes(f.get("size").and_then(Value::as_u64).unwrap_or(0)),
                        f.get("hits")
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            .to_string(),
                        f.get("uploads")
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            .to_string(),
                        f.get("name").map(scalar).unwrap_or_default(),
                        match f.get("sha1") {
                            Some(Value::String(urn)) => escape(urn),
                            _ => "(hashing)".to_string(),
                        },
                    ]
                })
                .collect();
            out.push('\n');
            out.push_str(&aligned(&header, &rows));
            if (list.len() as u64) < files {
                out.push_str(&format!(
                    "… and {} more (`--json` lists them)\n",
                    files - list.len() as u64
                ));
            }
        }
    }
    out.trim_end_matches('\n').to_string()
}

/// `get`: which downloads started (or took the new sources), and what failed.
/// `index status`: one block per server.
fn render_index(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "no index session (`index connect HOST:PORT NICK [PASSWORD]` logs in to one)"
            .into();
    }
    let mut blocks = Vec::new();
    for row in rows {
        let text = |key: &str| row.get(key).map(scalar).unwrap_or_else(|| "-".into());
        let number = |key: &str| row.get(key).and_then(Value::as_u64);
        let mut lines = vec![format!(
            "{} as {}: {}{}{}",
            text("server"),
            text("nick"),
            text("state"),
            number("online_secs")
                .map(|s| format!(" for {}", human_duration(s)))
                .unwrap_or_default(),
            number("retry_in_secs")
                .map(|s| format!(", again in {}", human_duration(s)))
                .unwrap_or_default(),
        )];
        let server = match (number("users"), number("files"), number("gigabytes")) {
            (Some(u), Some(f), Some(g)) => format!("; the server: {u} users, {f} files, {g} GB"),
            _ => String::new(),
        };
        lines.push(format!(
            "  shared {} files, data port {}{server}",
            number("shared").unwrap_or(0),
            number("data_port").unwrap_or(0)
        ));
        for motd in row
            .get("motd")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            lines.push(format!("  motd: {}", scalar(motd)));
        }
        if let Some(error) = row.get("last_error").filter(|e| !e.is_null()) {
            lines.push(format!("  last error: {}", scalar(error)));
        }
        lines.push(format!(
            "  {} messages in, {} out ({} / {}); {} skipped",
            number("messages_in").unwrap_or(0),
            number("messages_out").unwrap_or(0),
            human_bytes(number("bytes_in").unwrap_or(0)),
            human_bytes(number("bytes_out").unwrap_or(0)),
            number("skipped").unwrap_or(0)
        ));
        blocks.push(lines.join("\n"));
    }
    blocks.join("\n")
}

fn render_get(map: &Map<String, Value>) -> String {
    let mut lines = Vec::new();
    for d in map
        .get("downloads")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = d.get("download").map(scalar).unwrap_or_default();
        if d.get("new") == Some(&Value::Bool(true)) {
            lines.push(format!("download {id} started (`transfers` shows it)"));
        } else {
            lines.push(format!(
                "download {id} already exists: its sources were added"
            ));
        }
    }
    for e in map
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        lines.push(format!("error: {}", scalar(e)));
    }
    lines.join("\n")
}

/// A fraction as a percentage with one decimal.
fn percent(done: u64, size: u64) -> String {
    if size == 0 {
        return "-".into();
    }
    format!("{:.1}%", done as f64 * 100.0 / size as f64)
}

/// `transfers`: the downloads, then the uploads.
fn render_transfers(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    let downloads = map.get("downloads").and_then(Value::as_array);
    match downloads {
        Some(rows) if !rows.is_empty() => {
            let header: Vec<String> = [
                "id",
                "state",
                "done",
                "size",
                "rate",
                "eta",
                "sources",
                "name",
                "last error",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|d| {
                    let o = d.as_object().cloned().unwrap_or_default();
                    let size = o.get("size").and_then(Value::as_u64);
                    let done = num(&o, "done");
                    vec![
                        o.get("id").map(scalar).unwrap_or_default(),
                        o.get("state").map(scalar).unwrap_or_default(),
                        size.map_or_else(|| human_bytes(done), |s| percent(done, s)),
                        size.map_or("?".into(), human_bytes),
                        format!("{}/s", human_bytes(num(&o, "rate"))),
                        o.get("eta_secs")
                            .and_then(Value::as_u64)
                            .map_or("-".into(), human_duration),
                        format!("{}/{}", num(&o, "sources_active"), num(&o, "sources_known")),
                        o.get("name").map(scalar).unwrap_or_default(),
                        match o.get("path") {
                            Some(Value::String(p)) => format!("saved as {}", escape(p)),
                            _ => o.get("last_error").map(scalar).unwrap_or_default(),
                        },
                    ]
                })
                .collect();
            out.push_str("downloads:\n");
            out.push_str(&aligned(&header, &cells));
        }
        _ => out.push_str("no downloads (`get RESULT-ID` starts one)\n"),
    }
    match map.get("uploads").and_then(Value::as_array) {
        Some(rows) if !rows.is_empty() => {
            let header: Vec<String> = ["id", "peer", "state", "done", "rate", "file"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|u| {
                    let o = u.as_object().cloned().unwrap_or_default();
                    vec![
                        o.get("id").map(scalar).unwrap_or_default(),
                        o.get("peer").map(scalar).unwrap_or_default(),
                        o.get("state").map(scalar).unwrap_or_default(),
                        percent(num(&o, "done"), num(&o, "size")),
                        format!("{}/s", human_bytes(num(&o, "rate"))),
                        o.get("name").map(scalar).unwrap_or_default(),
                    ]
                })
                .collect();
            out.push_str("\nuploads:\n");
            out.push_str(&aligned(&header, &cells));
        }
        _ => out.push_str("no uploads\n"),
    }
    out.trim_end_matches('\n').to_string()
}

/// Rows of cells under a header, columns aligned.
fn aligned(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .chain(header.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

const PEER_COLUMNS: &[&str] = &[
    "id",
    "addr",
    "direction",
    "protocol",
    "state",
    "user_agent",
    "age_secs",
    "descriptors_in",
    "descriptors_out",
    "bytes_in",
    "bytes_out",
    "queued_descriptors",
    "dropped",
];
const RESULT_COLUMNS: &[&str] = &["id", "search", "origin", "addr", "size", "name", "urn"];

/// A table of the named columns (those present), in that order.
fn chosen_columns(rows: &[Value], columns: &[&str]) -> String {
    if rows.is_empty() || !rows.iter().all(Value::is_object) {
        return render_value(&Value::Array(rows.to_vec()));
    }
    let present: Vec<String> = columns
        .iter()
        .filter(|c| rows.iter().any(|r| r.get(**c).is_some()))
        .map(|c| c.to_string())
        .collect();
    let mut out = String::new();
    render_table(rows, &present, &mut out);
    out.trim_end_matches('\n').to_string()
}

fn render_value(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Array(rows) => render_rows(rows, &mut out),
        Value::Object(map) => render_record(map, 0, &mut out),
        other => out.push_str(&scalar(other)),
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

/// A scalar as text; strings without quotes, escaped: names, agents and
/// reasons come from peers, and a terminal must never act on them.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => escape(s),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// Keys in display order: an `id` first, the rest as stored (sorted).
fn ordered_keys<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut keys: Vec<&String> = keys.collect();
    keys.sort_by_key(|k| (k.as_str() != "id", k.as_str() != "search_id"));
    keys
}

fn render_record(map: &Map<String, Value>, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    for key in ordered_keys(map.keys()) {
        let Some(value) = map.get(key) else { continue };
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("{indent}{key}:\n"));
                render_record(inner, depth + 1, out);
            }
            Value::Array(rows) if rows.iter().any(Value::is_object) => {
                out.push_str(&format!("{indent}{key}:\n"));
                let mut table = String::new();
                render_rows(rows, &mut table);
                for line in table.lines() {
                    out.push_str(&format!("{indent}  {line}\n"));
                }
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(scalar).collect();
                out.push_str(&format!("{indent}{key}: {}\n", items.join(" ")));
            }
            other => out.push_str(&format!("{indent}{key}: {}\n", scalar(other))),
        }
    }
}

/// A list of records as an aligned table; a list of scalars one per line.
fn render_rows(rows: &[Value], out: &mut String) {
    if rows.is_empty() {
        out.push_str("(none)\n");
        return;
    }
    if !rows.iter().all(Value::is_object) {
        for row in rows {
            out.push_str(&scalar(row));
            out.push('\n');
        }
        return;
    }
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Value::Object(map) = row {
            for key in map.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    let columns: Vec<String> = ordered_keys(columns.iter()).into_iter().cloned().collect();
    render_table(rows, &columns, out);
}

/// Rows of records as an aligned table of `columns`.
fn render_table(rows: &[Value], columns: &[String], out: &mut String) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| match row.get(c) {
                    Some(Value::Object(_)) | Some(Value::Array(_)) => row
                        .get(c)
                        .map(|v| escape(&v.to_string()))
                        .unwrap_or_default(),
                    Some(v) => scalar(v),
                    None => "-".to_string(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |s| s.chars().count()))
                .chain(std::iter::once(c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |items: &[String]| -> String {
        let padded: Vec<String> = items
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    out.push_str(&line(columns));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn index_status_is_one_block_per_server_with_network_text_escaped() {
        let reply = Reply::new(
            "index",
            json!([{ "server": "127.0.0.1:8888", "nick": "me", "state": "online",
                "online_secs": 65, "shared": 3, "data_port": 6699, "users": 12, "files": 3400,
                "gigabytes": 9, "motd": ["hi\u{1b}[2J"], "last_error": null, "messages_in": 7,
                "messages_out": 5, "bytes_in": 2048, "bytes_out": 100, "skipped": 1 }]),
        );
        assert_eq!(
            render_text(&reply),
            "127.0.0.1:8888 as me: online for 1m 5s\n  \
             shared 3 files, data port 6699; the server: 12 users, 3400 files, 9 GB\n  \
             motd: hi\\e[2J\n  7 messages in, 5 out (2.0 KiB / 100 B); 1 skipped"
        );
        assert!(render_text(&Reply::new("index", json!([]))).starts_with("no index session"));
    }

    #[test]
    fn a_list_of_records_is_a_table_with_id_first() {
        let reply = Reply::new(
            "hosts",
            json!([
                { "address": "127.0.0.1:1", "id": 1, "protocol": "0.6" },
                { "address": "127.0.0.1:22", "id": 22, "protocol": "0.4" },
            ]),
        );
        assert_eq!(
            render_text(&reply),
            "id  address       protocol\n\
             1   127.0.0.1:1   0.6\n\
             22  127.0.0.1:22  0.4"
        );
    }

    #[test]
    fn peers_show_the_columns_that_fit_a_terminal_in_order() {
        let reply = Reply::new(
            "peers",
            json!([{ "user_agent": "Hazel/0.1", "deflate_in": true, "addr": "127.0.0.1:7", "id": 3 }]),
        );
        assert_eq!(
            render_text(&reply),
            "id  addr         user_agent\n3   127.0.0.1:7  Hazel/0.1"
        );
    }

    #[test]
    fn a_nested_record_is_indented() {
        let reply = Reply::new(
            "record",
            json!({ "received": { "query": 3, "ping": 1 }, "host_cache": 5 }),
        );
        assert_eq!(
            render_text(&reply),
            "host_cache: 5\nreceived:\n  ping: 1\n  query: 3"
        );
    }

    #[test]
    fn stats_read_as_sentences_and_a_table_not_field_names() {
        let reply = Reply::new(
            "stats",
            json!({
                "uptime_secs": 3725, "connections": 3, "established": 2, "searches": 1,
                "host_cache": 12, "pong_cache": 4,
                "received": { "ping": 5, "pong": 4, "query": 30, "query_hit": 2, "push": 0, "bye": 0, "other": 7 },
                "forwarded": { "ping": 0, "pong": 1, "query": 20, "query_hit": 1, "push": 0, "bye": 0, "other": 0 },
                "originated": { "ping": 3, "pong": 5, "query": 1, "query_hit": 0, "push": 0, "bye": 0, "other": 0 },
                "dropped": { "ping": 0, "pong": 0, "query": 3, "query_hit": 0, "push": 0, "bye": 0, "other": 7 },
                "drops_by_reason": { "duplicate": 3, "unknown_type": 7 },
                "pings_answered_from_cache": 2, "qrp_sent": 3,
                "ping_table": 8, "query_table": 31, "push_table": 0, "push_routes": 2,
                "routing_memory_bytes": 29_360_128
            }),
        );
        let text = render_text(&reply);
        assert!(
            text.starts_with("up 1h 2m; 3 connections (2 established), 1 searches"),
            "{text}"
        );
        assert!(
            text.contains("descriptors  Ping  Pong  Query  QueryHit"),
            "{text}"
        );
        assert!(text.contains("received     5     4     30     2"), "{text}");
        assert!(
            text.contains("drops by reason: duplicate 3, unknown type 7"),
            "{text}"
        );
        assert!(text.contains("(28.0 MiB)"), "{text}");
        for internal in ["query_hit:", "routing_memory_bytes", "drops_by_reason"] {
            assert!(!text.contains(internal), "{internal} in {text}");
        }
    }

    #[test]
    fn shares_say_what_is_shared_and_an_empty_library_says_how_to_share() {
        let empty = Reply::new(
            "shares",
            json!({ "files": 0, "kbytes": 0, "pending_hashes": 0, "list": [],
                    "scan": { "scans": 1, "files_hashed": 0, "bytes_hashed": 0, "cache_hits": 0, "published": 1 } }),
        );
        let text = render_text(&empty);
        assert!(
            text.starts_with("nothing shared (share a folder with --share DIR"),
            "{text}"
        );
        assert!(
            !text.contains("list:") && !text.contains("published"),
            "{text}"
        );
        let some = Reply::new(
            "shares",
            json!({ "files": 2, "kbytes": 5, "pending_hashes": 1,
                    "scan": { "scans": 2, "files_hashed": 1, "bytes_hashed": 4096, "cache_hits": 0, "published": 3 },
                    "list": [
                        { "index": 1, "name": "a.mp3", "size": 4096, "sha1": "urn:sha1:AAAA", "hits": 12, "uploads": 3 },
                        { "index": 2, "name": "b\u{1b}.txt", "size": 10, "sha1": null }
                    ] }),
        );
        let text = render_text(&some);
        assert!(
            text.starts_with("2 files shared, 5.0 KiB; 1 still being hashed"),
            "{text}"
        );
        assert!(
            text.contains("index  size     hits  uploads  name"),
            "{text}"
        );
        assert!(
            text.contains("1      4.0 KiB  12    3        a.mp3"),
            "{text}"
        );
        assert!(text.contains("b\\e.txt  (hashing)"), "{text}");
    }

    #[test]
    fn a_search_that_reached_nobody_says_so() {
        let nobody = Reply::new("search", json!({ "search_id": 3, "sent_to": 0 }));
        assert!(render_text(&nobody).contains("no peer is connected"));
        let two = Reply::new("search", json!({ "search_id": 4, "sent_to": 2 }));
        assert_eq!(
            render_text(&two),
            "search 4 sent to 2 peers; `results 4` lists what comes back"
        );
    }

    #[test]
    fn messages_empty_lists_and_search_ids() {
        assert_eq!(render_text(&Reply::message("connecting")), "connecting");
        assert_eq!(render_text(&Reply::new("peers", json!([]))), "(none)");
        assert_eq!(
            render_text(&Reply::new("search", json!({ "search_id": 9 }))),
            "search 9 started"
        );
    }
}
