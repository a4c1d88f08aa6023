//! `hazel-lab report`: the sweep behind the README's comparison, written as
//! a table (Markdown, CSV, JSON) and plots (SVG).
//!
//! Runs (all with one seed):
//! - sizes: every architecture at 100, 1,000, 10,000 … up to the largest
//!   size asked, flood on random overlays and, up to 10,000 nodes, on
//!   power-law overlays;
//! - TTL 1..7: flood on random and power-law overlays at the largest size up
//!   to 10,000;
//! - Ping/Pong: flood on random overlays at up to 1,000 nodes with TTL 1..7,
//!   with and without pong caching, one Ping from a random node before each
//!   query and queries 3.2 s apart. The servent's policies set that pace: a
//!   neighbour's Pings travel on at most once per 3 s (more often, they are
//!   answered but go no further, cache or not), and a pong cache answers
//!   only while a Pong passed through it in the last 5 s;
//! - churn: every architecture at 1,000 nodes (or fewer) with 1% of the
//!   nodes leaving and as many rejoining before each query.
//!
//! Plots: messages per query against N (log-log), reach against TTL, success
//! against replication (the size runs at the largest size), and the share of
//! Ping/Pong against TTL with and without pong caching.

use std::fs;
use std::io;
use std::path::Path;

use plotters::prelude::*;

use super::sim::{run, Arch, Row, Scenario};
use super::topology::Topology;
use super::workload::REPLICA_LABELS;

/// The CSV columns, in [`csv_line`]'s order.
pub const CSV_HEADER: &str = "arch,topology,nodes,ttl,pong_cache,churn,seed,queries,\
messages_per_query,query_messages_per_query,bytes_per_query,reach,duplicates_per_query,\
success,success_popular,success_rare,success_1,success_2_3,success_4_10,success_11_100,\
success_over_100,hops_to_answer,latency_ms,busiest_node_per_query,state_bytes_mean,\
state_bytes_max,ping_pong_share,maintenance_per_query,simulated_messages";

/// One row as CSV (NaN where a quantity has no value, e.g. no answer).
pub fn csv_line(r: &Row) -> String {
    let f = |x: f64| {
        if x.is_nan() {
            "NaN".to_string()
        } else {
            format!("{x:.4}")
        }
    };
    let mut cells = vec![
        r.arch.clone(),
        r.topology.clone(),
        r.nodes.to_string(),
        r.ttl.to_string(),
        r.pong_cache.to_string(),
        f(r.churn),
        r.seed.to_string(),
        r.queries.to_string(),
        f(r.messages_per_query),
        f(r.query_messages_per_query),
        f(r.bytes_per_query),
        f(r.reach),
        f(r.duplicates_per_query),
        f(r.success),
        f(r.success_popular),
        f(r.success_rare),
    ];
    cells.extend(r.success_by_replicas.iter().map(|&x| f(x)));
    cells.extend([
        f(r.hops_to_answer),
        f(r.latency_ms),
        f(r.busiest_node_per_query),
        f(r.state_bytes_mean),
        r.state_bytes_max.to_string(),
        f(r.ping_pong_share),
        f(r.maintenance_per_query),
        r.simulated_messages.to_string(),
    ]);
    cells.join(",")
}

/// What the report runs.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The largest network of the size sweep.
    pub max_nodes: usize,
    pub queries: usize,
    pub seed: u64,
}

/// Ultrapeers keep this many links among themselves and flood with TTL 3
/// (what Gnutella 0.6 ultrapeers did, scaled to the lab's sizes).
const ULTRAPEER_DEGREE: usize = 10;
const ULTRAPEER_TTL: u8 = 3;
/// The largest power-law flood of the size sweep.
const POWER_LAW_MAX_NODES: usize = 10_000;
/// Virtual time between queries in the Ping/Pong runs (ms): past the
/// servent's 3 s Ping throttle, within its pong cache's 5 s freshness.
const CACHE_RUNS_INTERVAL_MS: u64 = 3200;

impl Sweep {
    fn scenario(&self, arch: Arch, nodes: usize) -> Scenario {
        let mut s = Scenario::new(arch, nodes);
        s.seed = self.seed;
        s.workload.queries = self.queries;
        if arch == Arch::Super {
            s.degree = ULTRAPEER_DEGREE;
            s.ttl = ULTRAPEER_TTL;
        }
        s
    }

    /// 100, 1,000, 10,000 … below `max_nodes`, and `max_nodes`.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = std::iter::successors(Some(100usize), |n| Some(n * 10))
            .take_while(|&n| n < self.max_nodes)
            .collect();
        sizes.push(self.max_nodes);
        sizes
    }

    /// Every run of the report, in order, each tagged with its part.
    pub fn scenarios(&self) -> Vec<(Part, Scenario)> {
        let mut out = Vec::new();
        for &n in &self.sizes() {
            for arch in [Arch::Flood, Arch::Index, Arch::Super, Arch::Dht] {
                out.push((Part::Sizes, self.scenario(arch, n)));
            }
            // Past 10,000 nodes a power-law flood reaches nearly everyone
            // (hundreds of thousands of messages a query): too slow here.
            if n <= POWER_LAW_MAX_NODES {
                let mut s = self.scenario(Arch::Flood, n);
                s.topology = Topology::PowerLaw;
                out.push((Part::Sizes, s));
            }
        }
        for ttl in 1..=7 {
            for topology in [Topology::Random, Topology::PowerLaw] {
                let mut s = self.scenario(Arch::Flood, self.max_nodes.min(10_000));
                s.ttl = ttl;
                s.topology = topology;
                out.push((Part::Ttl, s));
            }
        }
        for ttl in 1..=7 {
            for cache in [true, false] {
                let mut s = self.scenario(Arch::Flood, self.max_nodes.min(1000));
                s.ttl = ttl;
                s.pong_cache = cache;
                s.interval_ms = CACHE_RUNS_INTERVAL_MS;
                out.push((Part::PingPong, s));
            }
        }
        for arch in [Arch::Flood, Arch::Index, Arch::Super, Arch::Dht] {
            let mut s = self.scenario(arch, self.max_nodes.min(1000));
            s.churn = 0.01;
            out.push((Part::Churn, s));
        }
        out
    }
}

/// Which part of the report a run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Sizes,
    Ttl,
    PingPong,
    Churn,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Sizes => "sizes",
            Part::Ttl => "ttl",
            Part::PingPong => "pingpong",
            Part::Churn => "churn",
        }
    }
}

/// Runs the sweep and writes `results.csv`, `results.json`, `table.md` and
/// the plots into `out`; the rows, tagged by part.
pub fn write(
    out: &Path,
    sweep: &Sweep,
    mut progress: impl FnMut(String),
) -> io::Result<Vec<(Part, Row)>> {
    fs::create_dir_all(out)?;
    let mut rows = Vec::new();
    for (part, scenario) in sweep.scenarios() {
        let row = run(&scenario);
        progress(format!(
            "{} {} {} n={} ttl={} cache={} churn={}: {:.1}s",
            part.name(),
            row.arch,
            row.topology,
            row.nodes,
            row.ttl,
            row.pong_cache,
            row.churn,
            row.wall_secs
        ));
        rows.push((part, row));
    }
    write_tables(out, &rows)?;
    write_plots(out, &rows, sweep)?;
    Ok(rows)
}

fn write_tables(out: &Path, rows: &[(Part, Row)]) -> io::Result<()> {
    let mut csv = format!("part,{CSV_HEADER}\n");
    for (part, row) in rows {
        csv.push_str(&format!("{},{}\n", part.name(), csv_line(row)));
    }
    fs::write(out.join("results.csv"), csv)?;
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|(part, row)| serde_json::json!({ "part": part.name(), "row": row }))
        .collect();
    fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    fs::write(out.join("table.md"), markdown_table(rows))
}

/// The comparison table: the size runs, then the churn runs.
pub fn markdown_table(rows: &[(Part, Row)]) -> String {
    let mut md = String::from(
        "| architecture | overlay | nodes | TTL | churn | msgs/query | bytes/query | reach | \
         success popular | success rare | hops | latency ms | busiest node msgs/query | \
         state bytes mean / max | Ping/Pong share |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let pct = |x: f64| {
        if x.is_nan() {
            "–".to_string()
        } else {
            format!("{:.1}%", 100.0 * x)
        }
    };
    let num = |x: f64, digits: usize| {
        if x.is_nan() {
            "–".to_string()
        } else {
            format!("{x:.digits$}")
        }
    };
    for (part, r) in rows {
        if matches!(part, Part::Ttl | Part::PingPong) {
            continue;
        }
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |\n",
            r.arch,
            r.topology,
            r.nodes,
            if r.ttl == 0 {
                "–".to_string()
            } else {
                r.ttl.to_string()
            },
            pct(r.churn),
            num(r.messages_per_query, 1),
            num(r.bytes_per_query, 0),
            pct(r.reach),
            pct(r.success_popular),
            pct(r.success_rare),
            num(r.hops_to_answer, 2),
            num(r.latency_ms, 0),
            num(r.busiest_node_per_query, 2),
            num(r.state_bytes_mean, 0),
            r.state_bytes_max,
            pct(r.ping_pong_share),
        ));
    }
    md
}

fn plot_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

/// One line of a plot.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
}

const COLORS: [RGBColor; 5] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
];

/// A line plot; log scales on the axes asked.
fn plot(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    (x_log, y_log): (bool, bool),
    lines: &[Line],
) -> io::Result<()> {
    let all: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let range = |v: &mut dyn Iterator<Item = f64>, log: bool| {
        let (lo, hi) = v.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        if log {
            let lo = lo.max(1e-3);
            (lo / 2.0, (hi * 2.0).max(lo * 4.0))
        } else {
            (lo.min(0.0), if hi > lo { hi * 1.05 } else { lo + 1.0 })
        }
    };
    let (x0, x1) = range(&mut all.iter().map(|p| p.0), x_log);
    let (y0, y1) = range(&mut all.iter().map(|p| p.1), y_log);
    let root = SVGBackend::new(path, (720, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .draw()
                .map_err(plot_err)?;
            for (i, line) in lines.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let points: Vec<(f64, f64)> = line
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite() && (!y_log || *y > 0.0))
                    .collect();
                // No line and no legend entry for a series with nothing to
                // draw (the power-law flood at the largest size).
                if points.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(plot_err)?
                    .label(line.label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(plot_err)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }};
    }
    match (x_log, y_log) {
        (true, true) => draw!(builder
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(plot_err)?),
        (false, true) => draw!(builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(plot_err)?),
        (true, false) => draw!(builder
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(plot_err)?),
        (false, false) => draw!(builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?),
    }
    root.present().map_err(plot_err)
}

fn series(
    rows: &[(Part, Row)],
    part: Part,
    keep: impl Fn(&Row) -> bool,
    xy: impl Fn(&Row) -> (f64, f64),
) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|(p, r)| *p == part && keep(r))
        .map(|(_, r)| xy(r))
        .collect()
}

/// The label of an architecture's line.
fn label(r: &Row) -> String {
    match r.arch.as_str() {
        "flood" => format!("flood ({}, TTL {})", r.topology, r.ttl),
        "super" => format!("ultrapeers (TTL {})", r.ttl),
        "index" => "central index".into(),
        "dht" => "Chord".into(),
        other => other.into(),
    }
}

fn write_plots(out: &Path, rows: &[(Part, Row)], sweep: &Sweep) -> io::Result<()> {
    // Messages per query against N, one line per architecture.
    let mut labels: Vec<String> = Vec::new();
    for (part, r) in rows {
        if *part == Part::Sizes && !labels.contains(&label(r)) {
            labels.push(label(r));
        }
    }
    let lines: Vec<Line> = labels
        .iter()
        .map(|l| Line {
            label: l.clone(),
            points: series(
                rows,
                Part::Sizes,
                |r| &label(r) == l,
                |r| (r.nodes as f64, r.messages_per_query),
            ),
        })
        .collect();
    plot(
        &out.join("messages_vs_nodes.svg"),
        "Messages per query against network size",
        ("nodes", "messages per query"),
        (true, true),
        &lines,
    )?;
    // Reach against TTL; the Ping/Pong share against TTL.
    let ttl_line = |name: &str, part: Part, keep: &dyn Fn(&Row) -> bool, y: fn(&Row) -> f64| Line {
        label: name.into(),
        points: series(rows, part, keep, |r| (f64::from(r.ttl), y(r))),
    };
    let reach = |r: &Row| 100.0 * r.reach;
    plot(
        &out.join("reach_vs_ttl.svg"),
        &format!(
            "Flood reach against TTL ({} nodes, degree 4 / power law)",
            sweep.max_nodes.min(10_000)
        ),
        ("TTL", "% of nodes reached"),
        (false, false),
        &[
            ttl_line("random", Part::Ttl, &|r| r.topology == "random", reach),
            ttl_line("power-law", Part::Ttl, &|r| r.topology == "powerlaw", reach),
        ],
    )?;
    let share = |r: &Row| 100.0 * r.ping_pong_share;
    plot(
        &out.join("pingpong_vs_ttl.svg"),
        &format!(
            "Ping/Pong share of all messages ({} nodes, one Ping per query)",
            sweep.max_nodes.min(1000)
        ),
        ("TTL", "% Ping and Pong"),
        (false, false),
        &[
            ttl_line("pong cache", Part::PingPong, &|r| r.pong_cache, share),
            ttl_line("no pong cache", Part::PingPong, &|r| !r.pong_cache, share),
        ],
    )?;
    // Success against replication at the largest size.
    let largest = sweep.max_nodes;
    let success: Vec<Line> = labels
        .iter()
        .map(|l| Line {
            label: l.clone(),
            points: rows
                .iter()
                .filter(|(p, r)| *p == Part::Sizes && r.nodes == largest && &label(r) == l)
                .flat_map(|(_, r)| {
                    r.success_by_replicas
                        .iter()
                        .enumerate()
                        .map(|(i, &s)| (i as f64, 100.0 * s))
                        .collect::<Vec<_>>()
                })
                .collect(),
        })
        .collect();
    plot(
        &out.join("success_vs_replication.svg"),
        &format!(
            "Success against copies of the file ({largest} nodes; buckets {})",
            REPLICA_LABELS.join(", ")
        ),
        (
            "replica bucket (0 = one copy … 4 = over 100)",
            "% of queries answered",
        ),
        (false, false),
        &success,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_writes_its_files_and_the_table_holds_the_runs() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sweep = Sweep {
            max_nodes: 150,
            queries: 6,
            seed: 3,
        };
        let rows = write(dir.path(), &sweep, |_| {}).expect("the report is written");
        let scenarios = sweep.scenarios();
        assert_eq!(rows.len(), scenarios.len());
        for name in [
            "results.csv",
            "results.json",
            "table.md",
            "messages_vs_nodes.svg",
            "reach_vs_ttl.svg",
            "success_vs_replication.svg",
            "pingpong_vs_ttl.svg",
        ] {
            let meta = fs::metadata(dir.path().join(name)).expect(name);
            assert!(meta.len() > 100, "{name} has content");
        }
        // The CSV holds each run's row as the simulation gives it.
        let csv = fs::read_to_string(dir.path().join("results.csv")).expect("csv");
        let lines: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(lines.len(), rows.len());
        for i in [0, 7, rows.len() - 1] {
            let (part, scenario) = &scenarios[i];
            let again = run(scenario);
            assert_eq!(lines[i], format!("{},{}", part.name(), csv_line(&again)));
        }
        // The Markdown table: one row per size and churn run.
        let md = fs::read_to_string(dir.path().join("table.md")).expect("md");
        let table_rows = md.lines().filter(|l| l.starts_with("| ")).count() - 1;
        let in_table = |p: &Part| matches!(p, Part::Sizes | Part::Churn);
        let expected = rows.iter().filter(|(p, _)| in_table(p)).count();
        assert_eq!(table_rows, expected);
        for (part, r) in rows.iter().filter(|(p, _)| in_table(p)) {
            let cells = format!("| {} | {} | {} |", r.arch, r.topology, r.nodes);
            assert!(md.contains(&cells), "{part:?} {cells}");
        }
        // The plots name their lines.
        let svg = fs::read_to_string(dir.path().join("messages_vs_nodes.svg")).expect("svg");
        assert!(svg.starts_with("<svg"));
        for l in [
            "central index",
            "Chord",
            "ultrapeers (TTL 3)",
            "flood (random, TTL 7)",
        ] {
            assert!(svg.contains(l), "legend {l}");
        }
    }

    #[test]
    fn sizes_climb_by_tens_up_to_the_largest() {
        let sweep = |max_nodes| Sweep {
            max_nodes,
            queries: 1,
            seed: 1,
        };
        assert_eq!(sweep(100_000).sizes(), vec![100, 1000, 10_000, 100_000]);
        assert_eq!(sweep(5000).sizes(), vec![100, 1000, 5000]);
        assert_eq!(sweep(100).sizes(), vec![100]);
    }

    #[test]
    fn the_largest_sizes_leave_out_only_the_power_law_flood() {
        let sweep = Sweep {
            max_nodes: 100_000,
            queries: 1,
            seed: 1,
        };
        let sized: Vec<Scenario> = sweep
            .scenarios()
            .into_iter()
            .filter(|(p, _)| *p == Part::Sizes)
            .map(|(_, s)| s)
            .collect();
        for n in [100, 1000, 10_000, 100_000] {
            let at: Vec<&Scenario> = sized.iter().filter(|s| s.nodes == n).collect();
            for arch in [Arch::Flood, Arch::Index, Arch::Super, Arch::Dht] {
                assert!(at.iter().any(|s| s.arch == arch), "{arch:?} at {n}");
            }
            let power_law = at.iter().any(|s| s.topology == Topology::PowerLaw);
            assert_eq!(power_law, n <= 10_000, "power-law flood at {n}");
        }
    }
}
