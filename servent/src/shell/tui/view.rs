//! Drawing the full-screen terminal: one function per screen, from the
//! [`App`] state alone. Every string a peer chose is escaped before it is
//! drawn (`hazel_protocol::text::escape`): names, user agents, reasons.

use hazel_protocol::text::{escape, escape_path};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState, Wrap,
};
use ratatui::Frame;

use super::app::{App, Mode, Screen};
use super::data::{SortBy, TYPE_TITLES};
use crate::shell::render::{human_bytes, human_duration};

/// Colours, or none (`NO_COLOR`): then only bold, reverse and underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set to anything but the empty string.
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    fn header(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    fn good(&self) -> Style {
        self.fg(Color::Green)
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    let area = frame.area();
    let [top, body, status, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_screen_tabs(frame, app, theme, top);
    match app.screen {
        Screen::Search => draw_search(frame, app, theme, body),
        Screen::Transfers => draw_transfers(frame, app, theme, body),
        Screen::Network => draw_network(frame, app, theme, body),
        Screen::Library => draw_library(frame, app, theme, body),
    }
    draw_status(frame, app, theme, status);
    draw_bottom(frame, app, theme, bottom);
    if let Some(popup) = &app.popup {
        draw_popup(frame, theme, &popup.title, &popup.lines, popup.scroll, body);
    }
    if app.help {
        draw_help(frame, theme, body);
    }
}

fn draw_screen_tabs(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let mut spans = vec![Span::styled(" hazel ", theme.title())];
    for (i, screen) in Screen::ALL.iter().enumerate() {
        let text = format!(" {} {} ", i + 1, screen.title());
        let style = if *screen == app.screen {
            theme.selected().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        spans.push(Span::styled(text, style));
    }
    spans.push(Span::styled("  ? help", theme.dim()));
    if app.info.demo.is_some() {
        spans.push(Span::styled("  [demo]", theme.good()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A table with a highlighted selection, scrolled to keep it visible.
fn render_table(frame: &mut Frame, table: Table, selected: Option<usize>, area: Rect) {
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

fn section(title: impl Into<String>, theme: Theme) -> Block<'static> {
    Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title.into(), theme.title()))
}

fn draw_search(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let [tabs_row, list, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut spans = Vec::new();
    for (i, tab) in app.tabs.iter().enumerate() {
        let text = format!(" {} ({}) ", escape(&tab.words), tab.grouped.groups.len());
        let style = if i == app.tab {
            theme.selected()
        } else {
            Style::default()
        };
        spans.push(Span::styled(text, style));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::styled("/ new search", theme.dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), tabs_row);

    let Some(tab) = app.tabs.get(app.tab) else {
        let mut lines = vec![
            Line::from(""),
            Line::from("  Press / and type some words to search the Gnutella overlay;"),
            Line::from("  results appear here as they arrive, one row per file."),
            Line::from("  Enter downloads the selected file; ? lists every key."),
        ];
        if let Some(demo) = &app.info.demo {
            lines.push(Line::from(""));
            lines.push(Line::from(format!(
                "  This is the playground: {} servents on 127.0.0.1 share sample files.",
                demo.servents
            )));
            if !demo.suggestions.is_empty() {
                lines.push(Line::from(format!(
                    "  Try: {}",
                    demo.suggestions
                        .iter()
                        .map(|s| escape(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        frame.render_widget(Paragraph::new(lines), list);
        return;
    };
    let g = &tab.grouped;
    let arrow = if g.descending { "▼" } else { "▲" };
    let title = |name: &str, column: SortBy| {
        if g.sort == column {
            format!("{name}{arrow}")
        } else {
            name.to_string()
        }
    };
    let header = Row::new(vec![
        title("Name", SortBy::Name),
        title("Size", SortBy::Size),
        title("Src", SortBy::Sources),
        title("Speed", SortBy::Speed),
        "Mark".to_string(),
        "Origin".to_string(),
    ])
    .style(theme.header());
    let rows = g.groups.iter().map(|group| {
        Row::new(vec![
            Cell::from(escape(&group.name)),
            Cell::from(human_bytes(group.size)),
            Cell::from(group.source_count().to_string()),
            Cell::from(format!("{}k", group.best_speed)),
            Cell::from(group.marks()),
            Cell::from(group.origin),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(20),
            Constraint::Length(10),
            Constraint::Length(4),
            Constraint::Length(7),
            Constraint::Length(4),
            Constraint::Length(7),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected());
    if g.groups.is_empty() {
        let text = match tab.sent_to {
            Some(0) => "no peer is connected: the search reached nobody".to_string(),
            Some(n) => format!("searching {n} peers… results appear as they arrive"),
            None => "sending the search…".to_string(),
        };
        frame.render_widget(
            Paragraph::new(vec![Line::from(""), Line::from(format!("  {text}"))]),
            list,
        );
    } else {
        render_table(frame, table, Some(tab.selected), list);
    }
    let detail_text = match g.groups.get(tab.selected) {
        Some(group) => {
            let key = match &group.key {
                super::data::FileKey::Urn(urn) => escape(urn),
                super::data::FileKey::NameSize(..) => "no urn: cannot be verified".into(),
            };
            format!(
                "{} results in {} files · {} · F firewalled B busy ? no urn · Enter downloads",
                g.results,
                g.groups.len(),
                key
            )
        }
        None => format!("{} results", g.results),
    };
    frame.render_widget(
        Paragraph::new(Span::styled(detail_text, theme.dim())),
        detail,
    );
}

/// A byte count in at most five characters: `512`, `9.5K`, `125K`, `3.2M`.
pub fn compact_bytes(n: u64) -> String {
    let mut value = n as f64;
    for unit in ["", "K", "M", "G", "T"] {
        if value < 1024.0 {
            return if unit.is_empty() {
                format!("{n}")
            } else if value < 10.0 {
                format!("{value:.1}{unit}")
            } else {
                format!("{value:.0}{unit}")
            };
        }
        value /= 1024.0;
    }
    format!("{value:.0}P")
}

/// A progress bar drawn with characters, `width` cells, then the percentage.
pub fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction * width as f64).floor() as usize).min(width);
    format!(
        "{}{} {:>3.0}%",
        "█".repeat(filled),
        "░".repeat(width - filled),
        fraction * 100.0
    )
}

fn draw_transfers(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let uploads_height = (app.transfers.uploads.len() as u16 + 2).clamp(3, 8);
    let [downloads_area, detail_area, uploads_area] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(7),
        Constraint::Length(uploads_height),
    ])
    .areas(area);
    let t = &app.transfers;
    // A narrow terminal drops the size column (the Sources line shows it).
    let wide = area.width >= 100;
    let mut titles = vec![
        "ID", "Name", "Progress", "Size", "Rate", "ETA", "Src", "State",
    ];
    let mut widths = vec![
        Constraint::Length(3),
        Constraint::Min(12),
        Constraint::Length(15),
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(11),
    ];
    if !wide {
        titles.remove(3);
        widths.remove(3);
    }
    let header = Row::new(titles).style(theme.header());
    let rows = t.downloads.iter().map(|d| {
        let state_style = match d.state.as_str() {
            "failed" => theme.error(),
            "done" => theme.good(),
            _ => Style::default(),
        };
        let mut cells = vec![
            Cell::from(d.id.to_string()),
            Cell::from(escape(&d.name)),
            Cell::from(bar(d.fraction(), 10)),
            Cell::from(d.size.map_or("?".into(), human_bytes)),
            Cell::from(format!("{}/s", human_bytes(d.rate))),
            Cell::from(d.eta_secs.map_or("-".into(), human_duration)),
            Cell::from(format!("{}/{}", d.sources_active, d.sources_known)),
            Cell::from(Span::styled(escape(&d.state), state_style)),
        ];
        if !wide {
            cells.remove(3);
        }
        Row::new(cells)
    });
    let table = Table::new(rows, widths)
        .header(header)
        .block(section(format!("Downloads ({})", t.downloads.len()), theme))
        .row_highlight_style(theme.selected());
    if t.downloads.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(""),
                Line::from("  No downloads: select a search result and press Enter."),
            ])
            .block(section("Downloads (0)", theme)),
            downloads_area,
        );
    } else {
        let selected = (app.transfer_selected < t.downloads.len()).then_some(app.transfer_selected);
        render_table(frame, table, selected, downloads_area);
    }

    // The selected download: where it goes, how it is checked, its sources.
    let mut lines = Vec::new();
    if let Some(d) = app.selected_download() {
        let mut first = format!(
            "{} · {} · {} · checked by {}",
            escape(&d.name),
            d.size.map_or("size unknown".into(), human_bytes),
            escape(&d.urn),
            escape(&d.verification)
        );
        if let Some(path) = &d.path {
            first.push_str(&format!(" · saved as {}", escape(path)));
        }
        lines.push(Line::from(first));
        if let Some(error) = &d.last_error {
            lines.push(Line::from(Span::styled(
                format!("last error: {}", escape(error)),
                theme.error(),
            )));
        }
        for s in &d.sources {
            let mut text = format!(
                "{:<21} {:<6} {:<4} {:>9}  {}",
                escape(&s.addr),
                escape(&s.origin),
                if s.push { "push" } else { "" },
                human_bytes(s.delivered),
                escape(&s.state)
            );
            if let Some(error) = &s.last_error {
                text.push_str(&format!(" ({})", escape(error)));
            }
            lines.push(Line::from(text));
        }
    } else {
        lines.push(Line::from(Span::styled(
            "p pause · r resume · c cancel · R retry (on the selected download)",
            theme.dim(),
        )));
    }
    frame.render_widget(
        Paragraph::new(lines).block(section("Sources", theme)),
        detail_area,
    );

    let header = Row::new(vec!["Peer", "File", "Progress", "Rate", "State"]).style(theme.header());
    let rows = t.uploads.iter().map(|u| {
        let fraction = if u.size > 0 {
            (u.done as f64 / u.size as f64).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Row::new(vec![
            Cell::from(escape(&u.peer)),
            Cell::from(u.name.as_deref().map(escape).unwrap_or_default()),
            Cell::from(bar(fraction, 10)),
            Cell::from(format!("{}/s", human_bytes(u.rate))),
            Cell::from(escape(&u.state)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(21),
            Constraint::Min(12),
            Constraint::Length(15),
            Constraint::Length(11),
            Constraint::Length(10),
        ],
    )
    .header(header)
    .block(section(format!("Uploads ({})", t.uploads.len()), theme))
    .row_highlight_style(theme.selected());
    let selected = app
        .transfer_selected
        .checked_sub(t.downloads.len())
        .filter(|i| *i < t.uploads.len());
    render_table(frame, table, selected, uploads_area);
}

fn draw_network(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let [peers_area, traffic_area, counters_area, info_area] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(3),
        Constraint::Length(6),
        Constraint::Length(3),
    ])
    .areas(area);
    // A narrow terminal drops the protocol column; `peers` has every field.
    let wide = area.width >= 100;
    let mut titles = vec![
        "ID",
        "Address",
        "Dir",
        "Pr",
        "Agent",
        "Age",
        "Desc in/out",
        "Bytes in/out",
        "Q",
        "Drop",
    ];
    let mut widths = vec![
        Constraint::Length(3),
        Constraint::Length(if wide { 21 } else { 17 }),
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Min(8),
        Constraint::Length(6),
        Constraint::Length(11),
        Constraint::Length(15),
        Constraint::Length(3),
        Constraint::Length(4),
    ];
    if !wide {
        titles.remove(3);
        widths.remove(3);
    }
    let header = Row::new(titles).style(theme.header());
    let rows = app.peers.iter().map(|p| {
        let mut cells = vec![
            p.id.to_string(),
            escape(&p.addr),
            if p.direction == "incoming" {
                "in"
            } else {
                "out"
            }
            .to_string(),
            escape(&p.protocol),
            escape(&p.user_agent),
            human_duration(p.age_secs),
            format!("{}/{}", p.descriptors_in, p.descriptors_out),
            format!("{}/{}", human_bytes(p.bytes_in), human_bytes(p.bytes_out)),
            p.queued_descriptors.to_string(),
            p.dropped.to_string(),
        ];
        if !wide {
            cells.remove(3);
        }
        Row::new(cells)
    });
    let table = Table::new(rows, widths)
        .header(header)
        .block(section(format!("Peers ({})", app.peers.len()), theme))
        .row_highlight_style(theme.selected());
    render_table(
        frame,
        table,
        (!app.peers.is_empty()).then_some(app.peer_selected),
        peers_area,
    );

    let [in_area, out_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(traffic_area);
    for (samples, title, area, color) in [
        (&app.traffic_in, "in", in_area, Color::Green),
        (&app.traffic_out, "out", out_area, Color::Magenta),
    ] {
        let data: Vec<u64> = samples.iter().copied().collect();
        let now = data.last().copied().unwrap_or(0);
        let peak = data.iter().copied().max().unwrap_or(0);
        // The newest samples that fit, right-aligned.
        let width = usize::from(area.width.max(1));
        let shown = &data[data.len().saturating_sub(width)..];
        frame.render_widget(
            Sparkline::default()
                .block(section(
                    format!(
                        "{title} {}/s, peak {}/s",
                        human_bytes(now),
                        human_bytes(peak)
                    ),
                    theme,
                ))
                .style(theme.fg(color))
                .data(shown),
            area,
        );
    }

    let stats = app.stats.clone().unwrap_or_default();
    let mut header = vec!["descriptors".to_string()];
    header.extend(TYPE_TITLES.iter().map(|t| t.to_string()));
    let rows = [
        ("received", stats.received),
        ("forwarded", stats.forwarded),
        ("sent by us", stats.originated),
        ("dropped", stats.dropped),
    ]
    .into_iter()
    .map(|(label, counts)| {
        let mut cells = vec![label.to_string()];
        cells.extend(counts.in_order().iter().map(|n| n.to_string()));
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(11)];
    widths.extend([Constraint::Length(8); 7]);
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.header()))
            .block(section("Routing", theme)),
        counters_area,
    );

    let drops = if stats.drops_by_reason.is_empty() {
        "none".to_string()
    } else {
        stats
            .drops_by_reason
            .iter()
            .map(|(reason, n)| format!("{} {n}", reason.replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = index_line(app);
    let lines = vec![
        Line::from(format!("drops by reason: {drops}")),
        Line::from(format!(
            "host cache {} · pong cache {} · query table {} · push routes {} · up {}",
            stats.host_cache,
            stats.pong_cache,
            stats.query_table,
            stats.push_routes,
            human_duration(stats.uptime_secs)
        )),
        Line::from(Span::styled(index, theme.dim())),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), info_area);
}

/// The index sessions in one line (escaped: addresses and errors may come
/// from the network).
fn index_line(app: &App) -> String {
    if app.index_sessions.is_empty() {
        return match app.info.demo.as_ref().map(|d| &d.index) {
            Some(Err(why)) => format!("index: none ({})", escape(why)),
            _ => "index: none (`index connect HOST:PORT NICK` logs in to one)".to_string(),
        };
    }
    let sessions: Vec<String> = app
        .index_sessions
        .iter()
        .map(|s| {
            let mut text = format!("{} as {}: {}", escape(&s.server), escape(&s.nick), s.state);
            match (s.state.as_str(), s.users, s.files) {
                ("online", Some(users), Some(files)) => text.push_str(&format!(
                    ", {users} users, {files} files, {} shared by us",
                    s.shared
                )),
                ("online", _, _) => text.push_str(&format!(", {} shared by us", s.shared)),
                _ => {
                    if let Some(secs) = s.retry_in_secs {
                        text.push_str(&format!(", again in {secs}s"));
                    }
                    if let Some(error) = &s.last_error {
                        text.push_str(&format!(" ({})", escape(error)));
                    }
                }
            }
            text
        })
        .collect();
    format!("index: {}", sessions.join(" · "))
}

fn draw_library(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let [summary_area, files_area] =
        Layout::vertical([Constraint::Length(5), Constraint::Min(3)]).areas(area);
    let shares = app.shares.clone().unwrap_or_default();
    let folders = if app.info.share_folders.is_empty() {
        "no folder shared (start with --share DIR)".to_string()
    } else {
        app.info
            .share_folders
            .iter()
            .map(|p| escape_path(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hashed = shares.files.saturating_sub(shares.pending_hashes);
    let fraction = if shares.files > 0 {
        hashed as f64 / shares.files as f64
    } else {
        1.0
    };
    let scan = shares.scan.clone().unwrap_or_default();
    let lines = vec![
        Line::from(format!("shared folders: {folders}")),
        Line::from(format!(
            "{} files, {} · downloads go to {}",
            shares.files,
            human_bytes(shares.kbytes.saturating_mul(1024)),
            escape_path(&app.info.downloads_dir)
        )),
        Line::from(format!(
            "hashed {} ({hashed}/{} files)",
            bar(fraction, 10),
            shares.files
        )),
        Line::from(format!(
            "{} scans · {} files hashed ({}) · {} from the hash cache",
            scan.scans,
            scan.files_hashed,
            human_bytes(scan.bytes_hashed),
            scan.cache_hits
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(section("Library", theme)),
        summary_area,
    );
    let wide = area.width >= 100;
    let header = Row::new(vec!["Name", "Size", "Hits", "Uploads", "SHA-1"]).style(theme.header());
    let rows = shares.list.iter().map(|f| {
        Row::new(vec![
            escape(&f.name),
            human_bytes(f.size),
            f.hits.to_string(),
            f.uploads.to_string(),
            f.sha1.as_deref().map_or("(hashing)".into(), |urn| {
                let base32 = escape(urn.trim_start_matches("urn:sha1:"));
                if wide {
                    base32
                } else {
                    format!("{}…", base32.chars().take(12).collect::<String>())
                }
            }),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(20),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(7),
            Constraint::Length(if wide { 32 } else { 13 }),
        ],
    )
    .header(header)
    .block(section(format!("Shared files ({})", shares.files), theme))
    .row_highlight_style(theme.selected());
    render_table(
        frame,
        table,
        (!shares.list.is_empty()).then_some(app.library_selected),
        files_area,
    );
}

fn draw_status(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let established = app
        .stats
        .as_ref()
        .map_or(app.peers.len() as u64, |s| s.established);
    let downloads = &app.transfers.downloads;
    let active = downloads
        .iter()
        .filter(|d| !d.is_over() && d.state != "paused")
        .count();
    let rate_in = app.traffic_in.back().copied().unwrap_or(0);
    let rate_out = app.traffic_out.back().copied().unwrap_or(0);
    let text = format!(
        " {established} peers · {} searches · {} results · dl {active}/{} · ul {} · {} shared · ↓{}/s ↑{}/s",
        app.tabs.len(),
        app.result_count(),
        downloads.len(),
        app.transfers.uploads.len(),
        app.shares.as_ref().map_or(0, |s| s.files),
        compact_bytes(rate_in),
        compact_bytes(rate_out),
    );
    let style = if theme.color {
        Style::default().bg(Color::Blue).fg(Color::White)
    } else {
        Style::default().add_modifier(Modifier::REVERSED)
    };
    frame.render_widget(Paragraph::new(text).style(style), area);
}

fn draw_bottom(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let (prefix, input) = match &app.mode {
        Mode::Search(input) => ("search: ", input),
        Mode::Command(input) => (":", input),
        Mode::Confirm { question, .. } => {
            frame.render_widget(
                Paragraph::new(Span::styled(format!("{question} (y/n)"), theme.header())),
                area,
            );
            return;
        }
        Mode::Normal => {
            let line = match (&app.status, &app.last_error) {
                (Some((text, true)), _) => Span::styled(text.clone(), theme.error()),
                (Some((text, false)), _) => Span::raw(text.clone()),
                (None, Some(error)) => Span::styled(format!("last error: {error}"), theme.dim()),
                (None, None) => Span::styled(
                    "/ search · Enter download · Tab screens · : command · ? help · q quit",
                    theme.dim(),
                ),
            };
            frame.render_widget(Paragraph::new(line), area);
            return;
        }
    };
    // Keep the cursor in view on a narrow terminal.
    let width = usize::from(area.width).saturating_sub(prefix.len() + 1);
    let skip = input.cursor.saturating_sub(width);
    let shown: String = input.text.chars().skip(skip).collect();
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prefix, theme.header()),
            Span::raw(escape(&shown)),
        ])),
        area,
    );
    let x = area.x + (prefix.len() + input.cursor - skip).min(usize::from(area.width) - 1) as u16;
    frame.set_cursor_position((x, area.y));
}

/// A box over the middle of `area`, cleared.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_popup(
    frame: &mut Frame,
    theme: Theme,
    title: &str,
    lines: &[String],
    scroll: usize,
    area: Rect,
) {
    let width = lines
        .iter()
        .map(|l| l.chars().count() as u16 + 2)
        .max()
        .unwrap_or(20)
        .max(title.chars().count() as u16 + 4)
        .max(40);
    let height = (lines.len() as u16).saturating_add(3);
    let rect = centered(area, width, height);
    let visible = usize::from(rect.height.saturating_sub(3)).max(1);
    let scroll = scroll.min(lines.len().saturating_sub(visible));
    let mut text: Vec<Line> = lines
        .iter()
        .skip(scroll)
        .take(visible)
        .map(|l| Line::from(l.clone()))
        .collect();
    text.push(Line::from(Span::styled(
        "↑↓ scroll · any other key closes",
        theme.dim(),
    )));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(title.to_string(), theme.title())),
        ),
        rect,
    );
}

/// Every key, by screen, as the help screen lists them.
pub const KEYS: &[(&str, &str)] = &[
    ("1-4, F2-F5", "Search, Transfers, Network, Library"),
    ("Tab, Shift-Tab", "next / previous screen"),
    ("/", "new search (a tab of its own)"),
    (":", "command line (Tab completes, Up/Down history)"),
    ("?, F1", "this help; any key closes it"),
    ("q, Ctrl-C", "quit: Bye to peers, state saved"),
    ("Up/Down, j/k", "move; PgUp/PgDn, Home/End (g/G)"),
    ("Esc", "close a popup, clear the message"),
    ("Search: Enter, d", "download the selected file"),
    ("Search: Left/Right, [ ]", "previous / next search tab"),
    ("Search: o / O", "sort by the next column / reverse"),
    ("Search: w", "close the search tab"),
    ("Transfers: p / r", "pause / resume the download"),
    ("Transfers: c, Del", "cancel it (asks y/n)"),
    ("Transfers: R", "retry a failed download"),
];

fn draw_help(frame: &mut Frame, theme: Theme, area: Rect) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:<24}"), theme.header()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(Span::styled(
        "Marks: F firewalled source, B busy, ? no urn (not downloadable)",
        theme.dim(),
    )));
    let height = lines.len() as u16 + 2;
    let rect = centered(area, 76, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Keys ", theme.title())),
        ),
        rect,
    );
}
