//! Line mode at a terminal (`hazel --line`): a prompt with line editing,
//! history (kept in `DATA-DIR/line-history`) and completion of command
//! names (rustyline); events and download progress are printed above the
//! line being typed, never over it (rustyline's external printer); progress
//! lines are drawn by indicatif, a few seconds apart, while downloads run.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Context, Editor, ExternalPrinter, Helper, Highlighter, Hinter, Validator};

use super::tui::app::complete;
use super::tui::data::{read, TransfersView};
use crate::core::CoreEvent;
use crate::shell::{answer_line, Command, Requests};

/// The history file, in the data directory.
pub const HISTORY_FILE: &str = "line-history";
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often running downloads are asked about, and a progress line printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// Completes the command name (the first word).
#[derive(Helper, Hinter, Highlighter, Validator)]
struct Names;

impl Completer for Names {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before.len() - before.trim_start().len();
        let names = complete(before)
            .into_iter()
            .map(|name| format!("{name} "))
            .collect();
        Ok((start, names))
    }
}

/// The terminal's settings at start, put back when the servent ends while
/// the editor holds the terminal in raw mode (a signal).
pub struct TerminalSettings(Option<libc::termios>);

impl TerminalSettings {
    pub fn save() -> TerminalSettings {
        // SAFETY: tcgetattr only writes the struct passed in.
        unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut settings) == 0 {
                return TerminalSettings(Some(settings));
            }
        }
        TerminalSettings(None)
    }
}

impl Drop for TerminalSettings {
    fn drop(&mut self) {
        if let Some(settings) = &self.0 {
            // SAFETY: tcsetattr reads the struct passed in.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, settings);
            }
        }
    }
}

/// Runs the line editor on a thread; events go through the editor's printer.
pub fn spawn<R: Requests>(
    requests: R,
    events: Receiver<CoreEvent>,
    data_dir: &Path,
) -> io::Result<thread::JoinHandle<()>> {
    let history = data_dir.join(HISTORY_FILE);
    thread::Builder::new().name("line".into()).spawn(move || {
        if let Err(e) = edit_lines(&requests, events, &history) {
            eprintln!("hazel: line editor: {e}");
        }
        let _ = requests.request(Command::Quit, ANSWER_TIMEOUT);
    })
}

fn edit_lines<R: Requests>(
    requests: &R,
    events: Receiver<CoreEvent>,
    history: &PathBuf,
) -> rustyline::Result<()> {
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .max_history_size(1000)?
        .build();
    let mut editor: Editor<Names, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(Names));
    let _ = editor.load_history(history);
    let printer = editor.create_external_printer()?;
    let printer_requests = requests.clone();
    thread::Builder::new()
        .name("line-events".into())
        .spawn(move || print_events(printer, events, printer_requests))?;
    loop {
        match editor.readline("hazel> ") {
            Ok(line) => {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line);
                let response = answer_line(requests, line, ANSWER_TIMEOUT);
                println!("{}", response.to_text());
                let bye = response.ok
                    && response
                        .reply
                        .as_ref()
                        .is_some_and(|r| r.kind == "message" && r.data == "bye");
                if bye {
                    break;
                }
            }
            // Ctrl-C or Ctrl-D: quit, as `quit` does.
            Err(ReadlineError::Interrupted) | Err(ReadlineError::Eof) => break,
            Err(e) => {
                let _ = editor.save_history(history);
                return Err(e);
            }
        }
    }
    let _ = editor.save_history(history);
    Ok(())
}

/// Prints events, and a progress line per running download every
/// [`PROGRESS_EVERY`], until the servent is gone.
fn print_events<P: ExternalPrinter, R: Requests>(
    mut printer: P,
    events: Receiver<CoreEvent>,
    requests: R,
) {
    let mut bars = Bars::default();
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    loop {
        let timeout = next_progress.saturating_duration_since(Instant::now());
        match events.recv_timeout(timeout) {
            Ok(event) => {
                let mut text = crate::servent::event_text(&event);
                text.push('\n');
                if printer.print(text).is_err() {
                    return;
                }
                if let CoreEvent::Download(crate::core::transfers::DownloadEvent::Started {
                    ..
                }) = event
                {
                    bars.running = true;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                next_progress = Instant::now() + PROGRESS_EVERY;
                if !bars.running {
                    continue;
                }
                let response = requests.request(Command::Transfers, ANSWER_TIMEOUT);
                let Some(view) = response
                    .reply
                    .as_ref()
                    .and_then(|r| read::<TransfersView>(&r.data))
                else {
                    continue;
                };
                for line in bars.update(&view) {
                    if printer.print(format!("{line}\n")).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// What indicatif drew last, captured instead of written to the terminal
/// (the line editor owns the cursor).
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<String>>);

impl TermLike for Captured {
    fn width(&self) -> u16 {
        crossterm::terminal::size().map_or(80, |(w, _)| w)
    }

    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write_str(s)
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        if let Ok(mut text) = self.0.lock() {
            if !s.trim().is_empty() {
                *text = s.to_string();
            }
        }
        Ok(())
    }

    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// One indicatif bar per download seen running.
#[derive(Default)]
struct Bars {
    bars: BTreeMap<u64, (ProgressBar, Captured)>,
    /// Some download was started or is running: keep asking.
    running: bool,
}

impl Bars {
    /// Moves every bar to its download's progress; the lines to print (a
    /// finished download's once, then it is forgotten).
    fn update(&mut self, view: &TransfersView) -> Vec<String> {
        let style = ProgressStyle::with_template(
            "download {prefix} [{bar:24}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let mut lines = Vec::new();
        self.running = false;
        for d in &view.downloads {
            let over = d.is_over();
            if over && !self.bars.contains_key(&d.id) {
                continue;
            }
            let (bar, captured) = self.bars.entry(d.id).or_insert_with(|| {
                let captured = Captured::default();
                let bar = ProgressBar::with_draw_target(
                    d.size,
                    ProgressDrawTarget::term_like(Box::new(captured.clone())),
                )
                .with_style(style.clone())
                .with_prefix(d.id.to_string());
                (bar, captured)
            });
            bar.set_message(hazel_protocol::text::escape(&format!(
                "{} · {}",
                d.name, d.state
            )));
            bar.set_position(d.done);
            if over {
                bar.finish();
            } else {
                self.running = true;
            }
            bar.tick();
            if let Ok(text) = captured.0.lock() {
                if !text.is_empty() {
                    lines.push(text.clone());
                }
            }
            if over {
                self.bars.remove(&d.id);
            }
        }
        lines
    }
}
