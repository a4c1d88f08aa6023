//! The full-screen terminal's state and what keys, replies and events do to
//! it. No terminal and no servent here: keys and replies go in, command lines
//! to send come out ([`App::take_requests`]), so every behaviour is testable.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hazel_protocol::text::escape;

use super::data::{self, Grouped, IndexRow, PeerRow, SharesView, SortBy, StatsView, TransfersView};
use crate::core::CoreEvent;
use crate::shell::{render_text, Response, HELP};

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Search,
    Transfers,
    Network,
    Library,
}

impl Screen {
    pub const ALL: [Screen; 4] = [
        Screen::Search,
        Screen::Transfers,
        Screen::Network,
        Screen::Library,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Search => "Search",
            Screen::Transfers => "Transfers",
            Screen::Network => "Network",
            Screen::Library => "Library",
        }
    }

    fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// Facts about this servent the replies do not carry.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub listen: String,
    pub data_dir: PathBuf,
    pub share_folders: Vec<PathBuf>,
    /// Where finished downloads go.
    pub downloads_dir: PathBuf,
    /// The playground, when this is `hazel --demo`.
    pub demo: Option<DemoInfo>,
}

/// What `--demo` started around this servent.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub dir: PathBuf,
    pub servents: usize,
    pub firewalled: usize,
    /// The index server's address, or why none runs.
    pub index: Result<String, String>,
    /// Words that find something in the playground.
    pub suggestions: Vec<String>,
}

/// One search and its results, a tab of the Search screen.
#[derive(Debug, Clone, Default)]
pub struct SearchTab {
    /// The servent's id for it, once the reply came.
    pub id: Option<u64>,
    pub words: String,
    pub grouped: Grouped,
    pub selected: usize,
    /// Peers it was sent to.
    pub sent_to: Option<u64>,
}

/// A line being typed at the bottom: a command or search words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    pub text: String,
    /// Cursor position in characters.
    pub cursor: usize,
}

impl Input {
    fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    fn delete(&mut self) {
        if self.cursor < self.text.chars().count() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn set(&mut self, text: &str) {
        self.text = text.to_string();
        self.cursor = text.chars().count();
    }

    /// Shared editing keys; false when the key is not one of them.
    fn edit(&mut self, key: KeyEvent) -> bool {
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if self.text.len() < crate::shell::MAX_LINE {
                    self.insert(c)
                }
            }
            KeyCode::Backspace => self.backspace(),
            KeyCode::Delete => self.delete(),
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.text.chars().count()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.chars().count(),
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => self.set(""),
            _ => return false,
        }
        true
    }
}

/// What the bottom line is used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Keys act on the screen.
    Normal,
    /// Typing search words (`/`).
    Search(Input),
    /// Typing a command (`:`).
    Command(Input),
    /// A question answered with y or n; the command line to send on y.
    Confirm { question: String, line: String },
}

/// A command's reply shown over the screen until Esc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popup {
    pub title: String,
    pub lines: Vec<String>,
    pub scroll: usize,
}

/// Why a request was sent: what to do with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Transfers,
    Peers,
    Stats,
    Index,
    Shares,
    /// A search from the search line, for this tab.
    Search(usize),
    /// An action key (get, pause…): its answer goes to the status line.
    Action,
    /// A line typed at `:`: answered in the status line, or a popup when long.
    Typed(String),
    Quit,
}

/// Traffic samples kept for the sparklines (one per poll).
pub const TRAFFIC_SAMPLES: usize = 120;
/// Event lines kept for the Network screen.
const EVENTS_KEPT: usize = 200;
/// Command lines kept in the history.
pub const HISTORY_KEPT: usize = 500;

/// The whole state of the full-screen terminal.
pub struct App {
    pub screen: Screen,
    pub mode: Mode,
    pub help: bool,
    pub popup: Option<Popup>,
    pub tabs: Vec<SearchTab>,
    pub tab: usize,
    pub transfers: TransfersView,
    /// Selected row of the Transfers screen (downloads, then uploads).
    pub transfer_selected: usize,
    pub peers: Vec<PeerRow>,
    pub peer_selected: usize,
    pub stats: Option<StatsView>,
    /// The index sessions (`index status`).
    pub index_sessions: Vec<IndexRow>,
    pub shares: Option<SharesView>,
    pub library_selected: usize,
    /// Bytes per second in and out over the overlay and the transfers.
    pub traffic_in: VecDeque<u64>,
    pub traffic_out: VecDeque<u64>,
    /// The last status message, and whether it is an error.
    pub status: Option<(String, bool)>,
    pub last_error: Option<String>,
    /// Recent events as lines (already escaped).
    pub events: VecDeque<String>,
    pub history: Vec<String>,
    history_pos: Option<usize>,
    pub info: Info,
    pub quit: bool,
    /// The servent has gone (quit elsewhere, or a signal).
    pub gone: bool,
    next_tag: u64,
    pending: HashMap<u64, Purpose>,
    outbox: Vec<(u64, String)>,
    /// Peer byte counters at the last poll, for the traffic rates.
    last_peer_bytes: HashMap<u64, (u64, u64)>,
    last_peers_poll: Option<std::time::Instant>,
    /// Results of searches no tab has claimed yet, by search id.
    unclaimed: HashMap<u64, Vec<crate::core::SearchResult>>,
}

impl App {
    pub fn new(info: Info) -> App {
        App {
            screen: Screen::Search,
            mode: Mode::Normal,
            help: false,
            popup: None,
            tabs: Vec::new(),
            tab: 0,
            transfers: TransfersView::default(),
            transfer_selected: 0,
            peers: Vec::new(),
            peer_selected: 0,
            stats: None,
            index_sessions: Vec::new(),
            shares: None,
            library_selected: 0,
            traffic_in: VecDeque::new(),
            traffic_out: VecDeque::new(),
            status: None,
            last_error: None,
            events: VecDeque::new(),
            history: Vec::new(),
            history_pos: None,
            info,
            quit: false,
            gone: false,
            next_tag: 1,
            pending: HashMap::new(),
            outbox: Vec::new(),
            last_peer_bytes: HashMap::new(),
            last_peers_poll: None,
            unclaimed: HashMap::new(),
        }
    }

    /// Command lines to send, each with the tag its answer must come back with.
    pub fn take_requests(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.outbox)
    }

    fn send(&mut self, line: impl Into<String>, purpose: Purpose) {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.pending.insert(tag, purpose);
        self.outbox.push((tag, line.into()));
    }

    /// Asks for the lists the screens show, unless an earlier ask is still unanswered.
    pub fn poll(&mut self, library: bool) {
        let mut wanted = vec![
            ("transfers", Purpose::Transfers),
            ("peers", Purpose::Peers),
            ("stats", Purpose::Stats),
            ("index status", Purpose::Index),
        ];
        if library || self.shares.is_none() {
            wanted.push(("shares", Purpose::Shares));
        }
        for (line, purpose) in wanted {
            if !self.pending.values().any(|p| *p == purpose) {
                self.send(line, purpose);
            }
        }
    }

    fn set_status(&mut self, text: impl Into<String>, error: bool) {
        let text = text.into();
        if error {
            self.last_error = Some(text.clone());
        }
        self.status = Some((text, error));
    }

    /// The number of results in every tab.
    pub fn result_count(&self) -> usize {
        self.tabs.iter().map(|t| t.grouped.results).sum()
    }

    /// An event from the servent.
    pub fn on_event(&mut self, event: &CoreEvent) {
        if let CoreEvent::SearchResult(r) = event {
            match self.tabs.iter().position(|t| t.id == Some(r.search)) {
                Some(tab) => self.tabs[tab].grouped.add(r),
                // Results can come before the reply naming our search's id:
                // they wait for it (bounded, like the servent's own lists).
                None if self.tabs.iter().any(|t| t.id.is_none()) => {
                    let waiting = self.unclaimed.entry(r.search).or_default();
                    if waiting.len() < crate::core::searches::MAX_RESULTS_PER_SEARCH {
                        waiting.push(r.clone());
                    }
                }
                None => {
                    // A search started elsewhere (`hazel ctl search`): a tab of its own.
                    self.tabs.push(SearchTab {
                        id: Some(r.search),
                        words: format!("search {}", r.search),
                        ..SearchTab::default()
                    });
                    let tab = self.tabs.len() - 1;
                    self.tabs[tab].grouped.add(r);
                }
            }
            return;
        }
        let text = crate::servent::event_text(event);
        if let CoreEvent::Download(crate::core::transfers::DownloadEvent::Failed { .. }) = event {
            self.set_status(text.clone(), true);
        } else if let CoreEvent::Download(_) | CoreEvent::Notice(_) = event {
            // Downloads, and what the bootstrap is doing, show in the status bar.
            self.set_status(text.clone(), false);
        }
        if self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(text);
    }

    /// The answer to a request sent with `tag`.
    pub fn on_reply(&mut self, tag: u64, response: Response) {
        let Some(purpose) = self.pending.remove(&tag) else {
            return;
        };
        let data = match (&response.reply, response.ok) {
            (Some(reply), true) => Some(reply),
            _ => None,
        };
        match purpose {
            Purpose::Transfers => {
                if let Some(view) = data.and_then(|r| data::read::<TransfersView>(&r.data)) {
                    self.transfers = view;
                }
            }
            Purpose::Peers => {
                if let Some(rows) = data.and_then(|r| data::read::<Vec<PeerRow>>(&r.data)) {
                    self.sample_traffic(&rows, std::time::Instant::now());
                    self.peers = rows;
                }
            }
            Purpose::Stats => {
                if let Some(stats) = data.and_then(|r| data::read::<StatsView>(&r.data)) {
                    self.stats = Some(stats);
                }
            }
            Purpose::Index => {
                if let Some(rows) = data.and_then(|r| data::read::<Vec<IndexRow>>(&r.data)) {
                    self.index_sessions = rows;
                }
            }
            Purpose::Shares => {
                if let Some(shares) = data.and_then(|r| data::read::<SharesView>(&r.data)) {
                    self.shares = Some(shares);
                }
            }
            Purpose::Search(tab) => match data {
                Some(reply) => {
                    let id = reply.data.get("search_id").and_then(|v| v.as_u64());
                    let sent_to = reply.data.get("sent_to").and_then(|v| v.as_u64());
                    if let Some(t) = self.tabs.get_mut(tab) {
                        t.id = id;
                        t.sent_to = sent_to;
                    }
                    self.claim(tab);
                    self.set_status(render_text(reply), sent_to == Some(0));
                }
                None => {
                    self.set_status(response.to_text(), true);
                    if tab < self.tabs.len() && self.tabs[tab].id.is_none() {
                        self.tabs.remove(tab);
                        self.tab = self.tab.min(self.tabs.len().saturating_sub(1));
                    }
                    if let Some(any) = self.tabs.iter().position(|t| t.id.is_some()) {
                        self.claim(any);
                    }
                }
            },
            Purpose::Action => self.set_status(response.to_text(), !response.ok),
            Purpose::Typed(line) => self.typed_reply(&line, &response),
            Purpose::Quit => self.quit = true,
        }
    }

    /// Gives tab `tab` the results that came before its id; once no tab
    /// waits for an id, results of searches started elsewhere get tabs.
    fn claim(&mut self, tab: usize) {
        if let Some(id) = self.tabs.get(tab).and_then(|t| t.id) {
            for r in self.unclaimed.remove(&id).unwrap_or_default() {
                self.tabs[tab].grouped.add(&r);
            }
        }
        if self.tabs.iter().all(|t| t.id.is_some()) {
            let mut rest: Vec<_> = self.unclaimed.drain().collect();
            rest.sort_by_key(|(id, _)| *id);
            for (_, results) in rest {
                for r in results {
                    self.on_event(&CoreEvent::SearchResult(r));
                }
            }
        }
    }

    /// Bytes per second since the last `peers`: the overlay links' counters
    /// (links present both times) plus the transfers' rates.
    fn sample_traffic(&mut self, rows: &[PeerRow], now: std::time::Instant) {
        let elapsed = self
            .last_peers_poll
            .map(|t| now.saturating_duration_since(t).as_secs_f64());
        let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
        for row in rows {
            if let Some((was_in, was_out)) = self.last_peer_bytes.get(&row.id) {
                bytes_in += row.bytes_in.saturating_sub(*was_in);
                bytes_out += row.bytes_out.saturating_sub(*was_out);
            }
        }
        self.last_peer_bytes = rows
            .iter()
            .map(|r| (r.id, (r.bytes_in, r.bytes_out)))
            .collect();
        self.last_peers_poll = Some(now);
        let Some(elapsed) = elapsed.filter(|e| *e > 0.05) else {
            return;
        };
        let down: u64 = self.transfers.downloads.iter().map(|d| d.rate).sum();
        let up: u64 = self.transfers.uploads.iter().map(|u| u.rate).sum();
        self.push_traffic(
            (bytes_in as f64 / elapsed) as u64 + down,
            (bytes_out as f64 / elapsed) as u64 + up,
        );
    }

    /// One traffic sample (bytes per second in and out).
    pub fn push_traffic(&mut self, bytes_in: u64, bytes_out: u64) {
        for (samples, value) in [
            (&mut self.traffic_in, bytes_in),
            (&mut self.traffic_out, bytes_out),
        ] {
            if samples.len() >= TRAFFIC_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(value);
        }
    }

    /// A `:` command's answer: one line in the status line, more in a popup.
    fn typed_reply(&mut self, line: &str, response: &Response) {
        let text = response.to_text();
        if !response.ok {
            self.set_status(text, true);
            return;
        }
        if let Some(reply) = &response.reply {
            if reply.kind == "message" && reply.data == "bye" {
                self.quit = true;
            }
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() <= 1 {
            self.set_status(text, false);
        } else {
            self.popup = Some(Popup {
                title: format!(":{}", escape(line)),
                lines,
                scroll: 0,
            });
        }
    }

    /// The servent is gone: nothing more will be answered.
    pub fn on_gone(&mut self) {
        self.gone = true;
        self.quit = true;
    }

    /// A key press.
    pub fn on_key(&mut self, mut key: KeyEvent) {
        // A newline typed ahead of raw mode, or Ctrl-J / Ctrl-M: Enter.
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('j') | KeyCode::Char('m'))
        {
            key = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        }
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('q'))
        {
            self.request_quit();
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key),
            Mode::Search(input) => self.search_key(input, key),
            Mode::Command(input) => self.command_key(input, key),
            Mode::Confirm { question, line } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => self.send(line, Purpose::Action),
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.set_status("not done", false)
                }
                _ => self.mode = Mode::Confirm { question, line },
            },
        }
    }

    /// Asks the servent to quit (Bye to peers, state saved); the terminal
    /// ends when it answers or is gone.
    pub fn request_quit(&mut self) {
        if !self.pending.values().any(|p| *p == Purpose::Quit) {
            self.set_status("quitting: saying Bye to peers, saving…", false);
            self.send("quit", Purpose::Quit);
        }
    }

    fn normal_key(&mut self, key: KeyEvent) {
        if self.help {
            self.help = false;
            return;
        }
        if let Some(popup) = &mut self.popup {
            match key.code {
                KeyCode::Up | KeyCode::Char('k') => popup.scroll = popup.scroll.saturating_sub(1),
                KeyCode::Down | KeyCode::Char('j') => popup.scroll += 1,
                KeyCode::PageUp => popup.scroll = popup.scroll.saturating_sub(10),
                KeyCode::PageDown | KeyCode::Char(' ') => popup.scroll += 10,
                _ => self.popup = None,
            }
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.request_quit(),
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Char(':') => self.mode = Mode::Command(Input::default()),
            KeyCode::Char('/') => {
                self.screen = Screen::Search;
                self.mode = Mode::Search(Input::default());
            }
            KeyCode::Tab => self.screen = Screen::ALL[(self.screen.index() + 1) % 4],
            KeyCode::BackTab => self.screen = Screen::ALL[(self.screen.index() + 3) % 4],
            KeyCode::Char(c @ '1'..='4') => {
                self.screen = Screen::ALL[(c as usize) - ('1' as usize)];
            }
            KeyCode::F(n @ 2..=5) => self.screen = Screen::ALL[usize::from(n) - 2],
            KeyCode::Esc => self.status = None,
            _ => match self.screen {
                Screen::Search => self.search_screen_key(key),
                Screen::Transfers => self.transfers_key(key),
                Screen::Network => move_selection(&mut self.peer_selected, self.peers.len(), key),
                Screen::Library => {
                    let len = self.shares.as_ref().map_or(0, |s| s.list.len());
                    move_selection(&mut self.library_selected, len, key)
                }
            },
        }
    }

    fn search_screen_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Right | KeyCode::Char(']') | KeyCode::Char('l') => {
                if !self.tabs.is_empty() {
                    self.tab = (self.tab + 1) % self.tabs.len();
                }
            }
            KeyCode::Left | KeyCode::Char('[') | KeyCode::Char('h') => {
                if !self.tabs.is_empty() {
                    self.tab = (self.tab + self.tabs.len() - 1) % self.tabs.len();
                }
            }
            KeyCode::Char('w') | KeyCode::Char('x') => {
                if self.tabs.get(self.tab).is_some_and(|t| t.id.is_none()) {
                    self.set_status("that search is still being sent", true);
                } else if self.tab < self.tabs.len() {
                    self.tabs.remove(self.tab);
                    self.tab = self.tab.min(self.tabs.len().saturating_sub(1));
                }
            }
            KeyCode::Char('o') | KeyCode::Char('O') => {
                if let Some(tab) = self.tabs.get_mut(self.tab) {
                    let g = &mut tab.grouped;
                    if key.code == KeyCode::Char('o') {
                        g.sort = g.sort.next();
                        g.descending = g.sort != SortBy::Name;
                    } else {
                        g.descending = !g.descending;
                    }
                    g.sort();
                }
            }
            KeyCode::Enter | KeyCode::Char('d') => self.download_selected(),
            _ => {
                if let Some(tab) = self.tabs.get_mut(self.tab) {
                    move_selection(&mut tab.selected, tab.grouped.groups.len(), key);
                }
            }
        }
    }

    fn download_selected(&mut self) {
        let Some(tab) = self.tabs.get(self.tab) else {
            self.set_status("no search yet: press / and type some words", true);
            return;
        };
        let Some(group) = tab.grouped.groups.get(tab.selected) else {
            self.set_status("no result selected", true);
            return;
        };
        // One result is enough: the servent takes every result with its urn
        // as a source (an overlay result with a urn first; else an index one).
        let Some(first) = group.download_result() else {
            return;
        };
        self.send(format!("get {first}"), Purpose::Action);
    }

    /// Downloads first, then uploads: the selected download, if a download is selected.
    pub fn selected_download(&self) -> Option<&data::DownloadRow> {
        self.transfers.downloads.get(self.transfer_selected)
    }

    fn transfers_key(&mut self, key: KeyEvent) {
        let len = self.transfers.downloads.len() + self.transfers.uploads.len();
        let Some(download) = self.selected_download().map(|d| (d.id, escape(&d.name))) else {
            move_selection(&mut self.transfer_selected, len, key);
            return;
        };
        let (id, name) = download;
        match key.code {
            KeyCode::Char('p') => self.send(format!("pause {id}"), Purpose::Action),
            KeyCode::Char('r') => self.send(format!("resume {id}"), Purpose::Action),
            KeyCode::Char('R') | KeyCode::Char('t') => {
                self.send(format!("retry {id}"), Purpose::Action)
            }
            KeyCode::Char('c') | KeyCode::Delete => {
                self.mode = Mode::Confirm {
                    question: format!("cancel download {id} ({name}) and delete its partial file?"),
                    line: format!("cancel {id}"),
                }
            }
            _ => move_selection(&mut self.transfer_selected, len, key),
        }
    }

    fn search_key(&mut self, mut input: Input, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let words = input.text.trim().to_string();
                if words.is_empty() {
                    return;
                }
                self.start_search(words);
            }
            _ => {
                input.edit(key);
                self.mode = Mode::Search(input);
            }
        }
    }

    /// A new tab, and the search sent for it.
    fn start_search(&mut self, words: String) {
        self.screen = Screen::Search;
        self.tabs.push(SearchTab {
            words: words.clone(),
            ..SearchTab::default()
        });
        self.tab = self.tabs.len() - 1;
        self.send(format!("search {words}"), Purpose::Search(self.tab));
    }

    fn command_key(&mut self, mut input: Input, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => self.history_pos = None,
            KeyCode::Enter => {
                self.history_pos = None;
                let line = input.text.trim().to_string();
                if line.is_empty() {
                    return;
                }
                if self.history.last() != Some(&line) {
                    self.history.push(line.clone());
                    if self.history.len() > HISTORY_KEPT {
                        self.history.remove(0);
                    }
                }
                if line.len() > crate::shell::MAX_LINE {
                    self.set_status(
                        format!("command longer than {} bytes", crate::shell::MAX_LINE),
                        true,
                    );
                    return;
                }
                // Checked here so a typo is answered at once, in the servent's words.
                match crate::shell::Command::parse(&line) {
                    Err(e) => {
                        self.set_status(format!("error: {e}"), true);
                        return;
                    }
                    Ok(crate::shell::Command::Search(request))
                        if request.networks == crate::shell::Networks::Both
                            && request.index == Default::default() =>
                    {
                        self.start_search(request.words.join(" "));
                        return;
                    }
                    Ok(_) => {}
                }
                let purpose = if line.eq_ignore_ascii_case("quit") {
                    Purpose::Quit
                } else {
                    Purpose::Typed(line.clone())
                };
                self.send(line, purpose);
            }
            KeyCode::Tab => {
                let completions = complete(&input.text);
                match completions.as_slice() {
                    [] => {}
                    [one] => input.set(&format!("{one} ")),
                    many => {
                        let common = common_prefix(many);
                        if common.len() > input.text.trim_start().len() {
                            input.set(&common);
                        }
                        self.set_status(many.join("  "), false);
                    }
                }
                self.mode = Mode::Command(input);
            }
            KeyCode::Up => {
                if !self.history.is_empty() {
                    let pos = match self.history_pos {
                        None => self.history.len() - 1,
                        Some(p) => p.saturating_sub(1),
                    };
                    self.history_pos = Some(pos);
                    input.set(&self.history[pos]);
                }
                self.mode = Mode::Command(input);
            }
            KeyCode::Down => {
                match self.history_pos {
                    Some(p) if p + 1 < self.history.len() => {
                        self.history_pos = Some(p + 1);
                        input.set(&self.history[p + 1]);
                    }
                    _ => {
                        self.history_pos = None;
                        input.set("");
                    }
                }
                self.mode = Mode::Command(input);
            }
            _ => {
                input.edit(key);
                self.mode = Mode::Command(input);
            }
        }
    }
}

/// Up/Down/PgUp/PgDn/Home/End (and j/k) over a list of `len` rows.
fn move_selection(selected: &mut usize, len: usize, key: KeyEvent) {
    let last = len.saturating_sub(1);
    *selected = match key.code {
        KeyCode::Up | KeyCode::Char('k') => selected.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => (*selected + 1).min(last),
        KeyCode::PageUp => selected.saturating_sub(10),
        KeyCode::PageDown => (*selected + 10).min(last),
        KeyCode::Home | KeyCode::Char('g') => 0,
        KeyCode::End | KeyCode::Char('G') => last,
        _ => *selected,
    }
    .min(last);
}

/// Every command name of the language (aliases included), for completion.
pub fn command_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = HELP
        .iter()
        .flat_map(|(usage, _)| usage.split(" / "))
        .filter_map(|usage| usage.split_whitespace().next())
        .collect();
    names.extend(["download", "exit"]);
    names.sort_unstable();
    names.dedup();
    names
}

/// Command names that complete the first word of `text` (none once a space is typed).
pub fn complete(text: &str) -> Vec<&'static str> {
    let word = text.trim_start();
    if word.contains(char::is_whitespace) {
        return Vec::new();
    }
    let word = word.to_ascii_lowercase();
    command_names()
        .into_iter()
        .filter(|name| name.starts_with(&word))
        .collect()
}

fn common_prefix(words: &[&str]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut len = first.len();
    for word in &words[1..] {
        len = len.min(
            first
                .bytes()
                .zip(word.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    first[..len].to_string()
}
