//! The full-screen terminal (ratatui on crossterm): Search, Transfers,
//! Network and Library screens, a `:` command line, a help screen.
//!
//! It is a client of the servent like the control socket: command lines go
//! in through [`Requests`] (on a worker thread of their own, so a slow
//! answer never freezes the screen) and JSON replies come back; events
//! (search results, peers, downloads) arrive on a channel the event loop
//! never waits on. The lists are polled once a second; the screen is
//! redrawn at most [`FRAME`] apart, whatever the traffic.
//!
//! The terminal is restored on every way out: quitting, the servent ending
//! (a signal), an error, and a panic on any thread (a panic hook).

pub mod app;
pub mod data;
pub mod view;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use crossterm::event::{Event, KeyEventKind};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::core::CoreEvent;
use crate::shell::{answer_line, Command, Requests, Response};
pub use app::{App, DemoInfo, Info};
use view::Theme;

/// Shortest time between two redraws.
pub const FRAME: Duration = Duration::from_millis(50);
/// How often the lists (transfers, peers, stats) are asked for.
pub const POLL: Duration = Duration::from_secs(1);
/// How long one request may wait for the servent's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Events handled before the screen gets a turn.
const EVENTS_PER_TURN: usize = 2000;
/// The file, in the data directory, that keeps the `:` history.
pub const HISTORY_FILE: &str = "command-history";

/// Whether the terminal is in raw mode on the alternate screen (for the panic hook).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Leaves raw mode and the alternate screen, shows the cursor. Safe to call twice.
pub fn restore_terminal() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = crossterm::terminal::disable_raw_mode();
        let mut out = io::stdout();
        let _ = crossterm::execute!(out, LeaveAlternateScreen, crossterm::cursor::Show);
        let _ = out.flush();
    }
}

/// Restores the terminal before any panic message is printed (once per process).
fn install_panic_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// Asks the servent to quit when the terminal's thread ends for any reason
/// (a panic included), so a servent is never left running without its screen.
struct QuitOnDrop<R: Requests>(R);

impl<R: Requests> Drop for QuitOnDrop<R> {
    fn drop(&mut self) {
        restore_terminal();
        let _ = self.0.request(Command::Quit, Duration::from_secs(2));
    }
}

/// Runs the full-screen terminal on a thread of its own.
pub fn spawn<R: Requests>(
    requests: R,
    events: Receiver<CoreEvent>,
    info: Info,
) -> io::Result<thread::JoinHandle<()>> {
    install_panic_hook();
    thread::Builder::new().name("screen".into()).spawn(move || {
        let _quit = QuitOnDrop(requests.clone());
        if let Err(e) = run(requests, events, info) {
            restore_terminal();
            eprintln!("hazel: the terminal failed: {e}");
        }
    })
}

fn run<R: Requests>(requests: R, events: Receiver<CoreEvent>, info: Info) -> io::Result<()> {
    let history_path = info.data_dir.join(HISTORY_FILE);
    let mut app = App::new(info);
    app.history = load_history(&history_path);
    crossterm::terminal::enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    crossterm::execute!(io::stdout(), EnterAlternateScreen)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let theme = Theme::from_env();

    let stop = Arc::new(AtomicBool::new(false));
    let inputs = spawn_input(Arc::clone(&stop))?;
    let (ask, replies) = spawn_worker(requests)?;
    let result = event_loop(
        &mut app,
        &mut terminal,
        theme,
        &inputs,
        &events,
        &ask,
        &replies,
    );
    stop.store(true, Ordering::SeqCst);
    restore_terminal();
    save_history(&history_path, &app.history);
    result
}

#[allow(clippy::too_many_arguments)]
fn event_loop(
    app: &mut App,
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    theme: Theme,
    inputs: &Receiver<Event>,
    events: &Receiver<CoreEvent>,
    ask: &Sender<(u64, String)>,
    replies: &Receiver<(u64, Response)>,
) -> io::Result<()> {
    let mut next_poll = Instant::now();
    let mut polls: u64 = 0;
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    loop {
        let now = Instant::now();
        if now >= next_poll {
            app.poll(polls.is_multiple_of(3) || app.screen == app::Screen::Library);
            polls += 1;
            next_poll = now + POLL;
        }
        for request in app.take_requests() {
            if ask.send(request).is_err() {
                app.on_gone();
            }
        }
        if app.quit {
            return Ok(());
        }
        let draw_at = last_draw.map_or(now, |t| t + FRAME);
        if dirty && now >= draw_at {
            terminal.draw(|frame| view::draw(frame, app, theme))?;
            last_draw = Some(now);
            dirty = false;
        }
        let wake = if dirty {
            draw_at.min(next_poll)
        } else {
            next_poll
        };
        let timeout = wake.saturating_duration_since(Instant::now());
        select! {
            recv(inputs) -> input => match input {
                Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    app.on_key(key);
                    dirty = true;
                }
                Ok(_) => dirty = true,
                Err(_) => return Err(io::Error::other("the keyboard reader stopped")),
            },
            recv(events) -> event => {
                dirty = true;
                match event {
                    Ok(event) => {
                        app.on_event(&event);
                        for event in events.try_iter().take(EVENTS_PER_TURN) {
                            app.on_event(&event);
                        }
                    }
                    Err(_) => app.on_gone(),
                }
            },
            recv(replies) -> reply => {
                dirty = true;
                match reply {
                    Ok((tag, response)) => app.on_reply(tag, response),
                    Err(_) => app.on_gone(),
                }
            },
            default(timeout) => {},
        }
    }
}

/// Reads the keyboard on its own thread until `stop`.
fn spawn_input(stop: Arc<AtomicBool>) -> io::Result<Receiver<Event>> {
    let (tx, rx) = crossbeam_channel::bounded(256);
    thread::Builder::new()
        .name("keyboard".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match crossterm::event::poll(Duration::from_millis(100)) {
                    Ok(true) => match crossterm::event::read() {
                        Ok(event) => {
                            if tx.send(event).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        })?;
    Ok(rx)
}

/// Sends command lines to the servent one at a time, on its own thread.
/// Command lines to send, each with its tag; answers with the tag they came for.
type Asks = (Sender<(u64, String)>, Receiver<(u64, Response)>);

fn spawn_worker<R: Requests>(requests: R) -> io::Result<Asks> {
    let (ask, asked) = crossbeam_channel::unbounded::<(u64, String)>();
    let (answer, replies) = crossbeam_channel::unbounded();
    thread::Builder::new()
        .name("screen-requests".into())
        .spawn(move || {
            for (tag, line) in asked {
                let response = answer_line(&requests, &line, ANSWER_TIMEOUT);
                if answer.send((tag, response)).is_err() {
                    return;
                }
            }
        })?;
    Ok((ask, replies))
}

fn load_history(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| {
            let lines: Vec<String> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
            let skip = lines.len().saturating_sub(app::HISTORY_KEPT);
            lines[skip..].to_vec()
        })
        .unwrap_or_default()
}

fn save_history(path: &PathBuf, history: &[String]) {
    let mut text = history.join("\n");
    text.push('\n');
    if let Err(e) = std::fs::write(path, text) {
        log::warn!("saving the command history: {e}");
    }
}

#[cfg(test)]
mod tests;
