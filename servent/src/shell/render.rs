//! Text form of a [`Reply`]: tables for lists of records, indented
//! `key: value` lines for records, the plain string for messages.

use super::Reply;
use hazel_protocol::text::escape;
use serde_json::{Map, Value};

/// Renders a reply for a person reading a terminal. Never ends with a newline.
pub fn render_text(reply: &Reply) -> String {
    match (reply.kind.as_str(), &reply.data) {
        ("search", Value::Object(map)) => match map.get("search_id") {
            Some(id) => format!("search {} started", scalar(id)),
            None => render_value(&reply.data),
        },
        // The table shows what fits a terminal; `--json` has every field.
        ("peers", Value::Array(rows)) => chosen_columns(rows, PEER_COLUMNS),
        ("results", Value::Array(rows)) => chosen_columns(rows, RESULT_COLUMNS),
        _ => render_value(&reply.data),
    }
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
const RESULT_COLUMNS: &[&str] = &["search", "addr", "file_index", "size", "name", "urn"];

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
            "stats",
            json!({ "received": { "query": 3, "ping": 1 }, "host_cache": 5 }),
        );
        assert_eq!(
            render_text(&reply),
            "host_cache: 5\nreceived:\n  ping: 1\n  query: 3"
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
