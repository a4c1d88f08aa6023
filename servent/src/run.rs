//! Starting a servent: [`run`] runs `hazel` (terminal or headless, control
//! socket, signals), [`spawn`] runs one on a thread of this process (tests,
//! embedding). Both build the same [`Servent`] behind the same event loop:
//! the data directory, the listener, a socket budget sized from the
//! open-file limit, the core with its reloaded host cache, the uploads and
//! the library scanner. Files written: `hosts`, `servent-id`, `port` and
//! `control.sock` in the data dir (the scanner adds its SHA-1 cache).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use hazel_protocol::text::escape_path;

use crate::config::Config;
use crate::control;
use crate::core::napster::session::Identity;
use crate::core::{Core, CoreConfig, HostCache};
use crate::data_dir::{DataDir, CONTROL_SOCKET, HOST_CACHE_FILE, PORT_FILE, SERVENT_ID_FILE};
use crate::disk::{load_records, DiskWorker, INCOMPLETE_DIR};
use crate::reactor::{socket_budget, Reactor, ReactorConfig, RequestError};
use crate::scanner::{LibraryConfig, LibraryScanner};
use crate::servent::uploads::Uploads;
use crate::servent::{EventSink, Handle, Servent, EVENT_BACKLOG};
use crate::shell::tui::{DemoInfo, Info};
use crate::shell::{Command, Requests, Response};

impl Requests for Handle {
    fn request(&self, command: Command, timeout: std::time::Duration) -> Response {
        match crate::reactor::Handle::request(self, command, timeout) {
            Ok(response) => response,
            Err(RequestError::Gone) => Response::error("the servent is shutting down"),
            Err(RequestError::Timeout) => Response::error("the servent did not answer in time"),
        }
    }
}

/// The servent for `config`, listening at `listen_addr`: its core (with the
/// host cache reloaded and `--connect` targets dialled), its uploads, and a
/// scanner that wakes the loop through `handle` with each new library.
fn make_servent(
    config: &Config,
    listen_addr: SocketAddr,
    napster_port: u16,
    data: DataDir,
    handle: Handle,
    events: EventSink,
    now: Instant,
) -> io::Result<Servent> {
    let servent_id = load_or_make_servent_id(&data);
    log::info!("servent id {}", data_encoding::HEXLOWER.encode(&servent_id));
    let mut core_config = CoreConfig::new(servent_id, listen_addr);
    core_config.firewalled = config.firewalled;
    core_config.protocol = config.protocol;
    core_config.peers = config.peers;
    core_config.max_peers = config.max_peers;
    core_config.ttl = config.ttl;
    core_config.seed = rand::random();
    core_config.transfers.sources_per_download = config.sources_per_download;
    core_config.transfers.stall_timeout = config.transfer_stall;
    core_config.bootstrap = config.bootstrap.clone();
    core_config.default_caches = config.default_caches;
    core_config.napster = config.nick.as_ref().map(|nick| Identity {
        nick: nick.clone(),
        password: config.password.clone(),
        data_port: if config.firewalled { 0 } else { napster_port },
        link_speed: LINK_SPEED,
    });
    let mut core = Core::new(core_config, now);
    if let Some(identity) = core.config().napster.clone() {
        for addr in &config.index {
            if let Err(e) = core.index_connect(*addr, identity.clone(), now) {
                log::warn!("--index {addr}: {e}");
            }
        }
    }
    match data.load(HOST_CACHE_FILE) {
        Ok(Some(bytes)) => {
            let capacity = core.config().host_cache_capacity;
            let hosts = HostCache::from_bytes(&bytes, capacity, now);
            log::info!("host cache: {} hosts reloaded", hosts.len());
            core.set_host_cache(hosts);
        }
        Ok(None) => {}
        Err(e) => log::warn!("reading the host cache: {e}"),
    }
    for addr in &config.connect {
        core.connect(*addr, now);
    }
    // Downloads: the disk worker, and what an earlier run left to finish.
    let incomplete = data.path(INCOMPLETE_DIR);
    let downloads = config
        .downloads
        .clone()
        .unwrap_or_else(|| data.path("downloads"));
    let (disk_tx, disk_events) = crossbeam_channel::unbounded();
    let disk_handle = handle.clone();
    let disk = DiskWorker::spawn(incomplete.clone(), downloads, move |event| {
        if disk_tx.send(event).is_ok() {
            disk_handle.wake();
        }
    })?;
    let resolve_handle = handle.clone();
    let resolver = crate::resolver::Resolver::new(move || resolve_handle.wake());
    let saved = load_records(&incomplete);
    if !saved.is_empty() {
        log::info!("resuming {} downloads", saved.len());
    }
    for record in &saved {
        core.restore_download(record, now);
    }
    let (tx, libraries) = crossbeam_channel::unbounded();
    let mut library_config = LibraryConfig::new(config.shares.clone(), data.root().to_path_buf());
    library_config.follow_links_out = config.follow_links_out;
    let uploads = Uploads::new(config.limits.clone(), library_config.confinement());
    let scan_handle = handle.clone();
    let scanner = LibraryScanner::spawn(library_config, move |library| {
        if tx.send(library).is_ok() {
            scan_handle.wake();
        }
    })?;
    let mut servent = Servent::new(
        core,
        uploads,
        disk,
        disk_events,
        resolver,
        data,
        scanner,
        libraries,
        config,
        now,
    );
    servent.set_event_sink(events);
    let (shares_tx, share_lists) = crossbeam_channel::bounded(4);
    let shares_handle = handle.clone();
    let worker = crate::napster_shares::IndexSharesWorker::spawn(move |list| {
        if shares_tx.send(list).is_ok() {
            shares_handle.wake();
        }
    })?;
    servent.set_index_shares_worker(worker, share_lists);
    servent.set_napster_data_port(if config.firewalled { 0 } else { napster_port });
    Ok(servent)
}

/// Our servent id, kept in the data dir so QueryHits (and the Pushes that
/// follow them) name the same servent across restarts. A missing or damaged
/// file gets a fresh id.
/// The link speed announced to index servers (Napster's code for "T1").
pub const LINK_SPEED: u32 = 9;

fn load_or_make_servent_id(data: &DataDir) -> [u8; 16] {
    let stored = data
        .load(SERVENT_ID_FILE)
        .ok()
        .flatten()
        .and_then(|bytes| {
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(bytes.trim_ascii())
                .ok()
        })
        .and_then(|bytes| <[u8; 16]>::try_from(bytes.as_slice()).ok());
    if let Some(id) = stored {
        return id;
    }
    let mut id = *uuid::Uuid::new_v4().as_bytes();
    // The modern id shape (PROTOCOL-NOTES §1).
    id[8] = 0xff;
    id[15] = 0x00;
    let text = format!("{}\n", data_encoding::HEXLOWER.encode(&id));
    if let Err(e) = data.save_atomic(SERVENT_ID_FILE, text.as_bytes()) {
        log::warn!("saving the servent id: {e}");
    }
    id
}

/// How the servent meets its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// No terminal: commands on stdin (no prompt) and the control socket; events logged.
    Headless,
    /// Line mode without a terminal (a script, a pipe): a prompt, events printed as lines.
    Lines,
    /// Line mode at a terminal (`--line`): line editing, history, completion, progress lines.
    LineEditor,
    /// The full-screen terminal.
    FullScreen,
}

impl Frontend {
    /// Full screen when stdin and stdout are a terminal, unless `--line`
    /// (then the line editor) or `--headless`; plain lines otherwise.
    pub fn choose(headless: bool, line: bool) -> Frontend {
        use std::io::IsTerminal;
        if headless {
            Frontend::Headless
        } else if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
            Frontend::Lines
        } else if line {
            Frontend::LineEditor
        } else {
            Frontend::FullScreen
        }
    }

    /// Whether log lines must stay off the terminal (they would break its screen or line).
    pub fn owns_terminal(self) -> bool {
        matches!(self, Frontend::LineEditor | Frontend::FullScreen)
    }
}

/// The log file, in the data directory, of a servent whose terminal is taken.
pub const LOG_FILE: &str = "hazel.log";

/// Starts logging at `level`: on stderr, or into `DATA-DIR/hazel.log` when
/// the terminal belongs to the interface.
pub fn init_logging(level: &str, frontend: Frontend, data_dir: &std::path::Path) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    if frontend.owns_terminal() {
        let file = std::fs::create_dir_all(data_dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data_dir.join(LOG_FILE))
        });
        match file {
            Ok(file) => {
                builder.target(env_logger::Target::Pipe(Box::new(file)));
            }
            Err(_) => {
                builder.parse_filters("off");
            }
        }
    }
    let _ = builder.try_init();
}

/// Runs a servent until `quit` or SIGINT/SIGTERM; returns when it has said Bye
/// and saved its host cache.
pub fn run(config: Config) -> io::Result<()> {
    let frontend = Frontend::choose(config.headless, false);
    run_as(config, frontend, None)
}

/// Runs a servent with the given interface (and, for `--demo`, what the
/// playground started around it).
pub fn run_as(config: Config, frontend: Frontend, demo: Option<DemoInfo>) -> io::Result<()> {
    raise_fd_limit();
    let (sink, events) = match frontend {
        Frontend::Headless => (EventSink::Log, None),
        Frontend::Lines => (EventSink::Print, None),
        Frontend::LineEditor | Frontend::FullScreen => {
            let (tx, rx) = crossbeam_channel::bounded(EVENT_BACKLOG);
            (EventSink::Channel(tx), Some(rx))
        }
    };
    let (mut reactor, data) = build(&config, sink)?;
    let listen_addr = reactor.local_addr();
    let reactor_napster_port = reactor.napster_port().unwrap_or(0);
    let handle = reactor.handle();
    let socket = data.path(CONTROL_SOCKET);
    let _control = control::serve(&socket, handle.clone()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("control socket {}: {e}", socket.display()),
        )
    })?;
    // Announce the port last, once commands can be taken: tests wait for this file.
    data.save_atomic(PORT_FILE, format!("{listen_addr}\n").as_bytes())?;
    if frontend != Frontend::FullScreen {
        println!("listening on {listen_addr} (napster data port {reactor_napster_port})");
        println!("data directory: {}", escape_path(&config.data_dir));
        if config.shares.is_empty() {
            println!("sharing nothing (add --share DIR to share a folder)");
        } else {
            let shares: Vec<String> = config.shares.iter().map(|p| escape_path(p)).collect();
            println!("sharing {}", shares.join(", "));
        }
    }
    spawn_signal_thread(handle.clone(), frontend != Frontend::Headless)?;
    let _settings =
        (frontend == Frontend::LineEditor).then(crate::shell::line::TerminalSettings::save);
    let terminal = match (frontend, events) {
        (Frontend::FullScreen, Some(events)) => {
            let info = Info {
                listen: listen_addr.to_string(),
                data_dir: config.data_dir.clone(),
                share_folders: config.shares.clone(),
                downloads_dir: config
                    .downloads
                    .clone()
                    .unwrap_or_else(|| data.path("downloads")),
                demo,
            };
            crate::shell::tui::spawn(handle, events, info)?
        }
        (Frontend::LineEditor, Some(events)) => {
            crate::shell::line::spawn(handle, events, data.root())?
        }
        _ => crate::shell::terminal::spawn_stdin(handle, frontend == Frontend::Lines)?,
    };
    let result = reactor.run();
    // The servent's end closes the event channel: a screen notices and restores the terminal.
    drop(reactor);
    // A `quit` typed on stdin: let the terminal print its answer before the
    // process ends (bounded: the thread may instead be blocked reading).
    let grace = if frontend == Frontend::FullScreen {
        std::time::Duration::from_secs(3)
    } else {
        std::time::Duration::from_millis(300)
    };
    let deadline = Instant::now() + grace;
    while !terminal.is_finished() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    crate::shell::tui::restore_terminal();
    let _ = std::fs::remove_file(data.path(PORT_FILE));
    result
}

/// The data dir, the listener, the servent and its event loop, ready to run.
fn build(config: &Config, events: EventSink) -> io::Result<(Reactor<Servent>, DataDir)> {
    let data = DataDir::open(&config.data_dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "data directory {}: {e} (choose another with --data-dir DIR)",
                escape_path(&config.data_dir)
            ),
        )
    })?;
    let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::AddrInUse => {
                "; another program (another hazel?) uses that port: pick another with \
                 --listen ADDR:PORT (port 0 picks a free one)"
            }
            io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need privileges: use --listen with a higher port"
            }
            io::ErrorKind::AddrNotAvailable => {
                "; that address is not one of this machine's: use --listen 0.0.0.0:PORT"
            }
            _ => "",
        };
        io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}{hint}", config.listen),
        )
    })?;
    let listen_addr = listener.local_addr()?;
    let now = Instant::now();
    let fd_limit = open_file_limit();
    // Descriptors for everything but sockets: a file per upload slot and per
    // hashing or saving job, the control socket and its clients, stdio,
    // the poller and its waker.
    let reserved = 48 + config.limits.upload_slots;
    let reactor_config = ReactorConfig {
        max_sockets: socket_budget(fd_limit, reserved),
        ..ReactorConfig::default()
    };
    if config.max_peers > reactor_config.max_sockets {
        log::warn!(
            "--max-peers {} is more than the {} sockets the open-file limit ({fd_limit}) allows",
            config.max_peers,
            reactor_config.max_sockets
        );
    }
    // The Napster data port: on the same address, a port of its own.
    let napster_addr = SocketAddr::new(listen_addr.ip(), config.napster_port);
    let napster_listener = std::net::TcpListener::bind(napster_addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {napster_addr} (--napster-port): {e}"),
        )
    })?;
    let napster_port = napster_listener.local_addr()?.port();
    let mut reactor = Reactor::new(listener, reactor_config, |handle| {
        make_servent(
            config,
            listen_addr,
            napster_port,
            data.clone(),
            handle,
            events,
            now,
        )
    })?;
    reactor.add_napster_listener(napster_listener)?;
    Ok((reactor, data))
}

/// The soft limit on open files (what this process may hold now).
fn open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    }
}

/// A servent running on a thread of this process (for tests of several
/// servents, or embedding): no stdin, no signal handlers, but the control
/// socket in its data dir as usual. Dropping it quits it and waits.
pub struct RunningServent {
    /// The bound listening address.
    pub addr: SocketAddr,
    handle: Handle,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    _control: control::ControlServer,
}

impl RunningServent {
    /// Answers one command line, as the terminal or the control socket would.
    pub fn command(&self, line: &str) -> Response {
        crate::shell::answer_line(&self.handle, line, std::time::Duration::from_secs(10))
    }

    /// Says Bye, saves, and waits for the loop to end.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self
            .handle
            .request(Command::Quit, std::time::Duration::from_secs(10));
        thread
            .join()
            .map_err(|_| io::Error::other("the servent thread panicked"))?
    }
}

impl Drop for RunningServent {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts a servent on a new thread (see [`RunningServent`]).
pub fn spawn(config: Config) -> io::Result<RunningServent> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let thread = std::thread::Builder::new()
        .name("servent".into())
        .spawn(move || {
            let sink = if config.headless {
                EventSink::Log
            } else {
                EventSink::Print
            };
            let (mut reactor, data) = match build(&config, sink) {
                Ok(built) => built,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok((reactor.local_addr(), reactor.handle(), data)));
            reactor.run()
        })?;
    let (addr, handle, data) = ready_rx
        .recv()
        .map_err(|_| io::Error::other("the servent thread ended before starting"))??;
    let control = control::serve(&data.path(CONTROL_SOCKET), handle.clone())?;
    Ok(RunningServent {
        addr,
        handle,
        thread: Some(thread),
        _control: control,
    })
}

/// Lifts the soft limit on open files to the hard limit (at most 65536), so
/// `--max-peers` in the thousands is not cut short by a default of 1024.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            let wanted = limit.rlim_max.min(65536);
            if limit.rlim_cur < wanted {
                limit.rlim_cur = wanted;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    log::warn!("could not raise the open-file limit");
                }
            }
        }
    }
}

/// SIGINT and SIGTERM (and SIGHUP, a closed terminal, when one is used)
/// become a `quit` command.
fn spawn_signal_thread(handle: Handle, hangup: bool) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut wanted = vec![SIGINT, SIGTERM];
    if hangup {
        wanted.push(SIGHUP);
    }
    let mut signals = signal_hook::iterator::Signals::new(wanted)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                log::info!("signal {signal}: quitting");
                let _ = handle.request(Command::Quit, std::time::Duration::from_secs(5));
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ProtocolVersion;
    use std::time::Duration;

    fn config(dir: &std::path::Path, shares: Vec<std::path::PathBuf>) -> Config {
        Config {
            headless: true,
            listen: "127.0.0.1:0".parse().unwrap(),
            shares,
            data_dir: dir.to_path_buf(),
            connect: Vec::new(),
            peers: 0,
            max_peers: 8,
            ttl: 7,
            firewalled: false,
            protocol: ProtocolVersion::V06,
            follow_links_out: false,
            limits: crate::config::Limits::default(),
            downloads: None,
            sources_per_download: 4,
            transfer_stall: Duration::from_secs(30),
            bootstrap: Vec::new(),
            default_caches: false,
            index: Vec::new(),
            nick: None,
            password: None,
            napster_port: 0,
        }
    }

    fn wait(mut f: impl FnMut() -> bool) -> bool {
        for _ in 0..300 {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    #[test]
    fn two_servents_in_one_process_link_up_and_find_each_others_files() {
        let temp = tempfile::tempdir().unwrap();
        let share = temp.path().join("share");
        std::fs::create_dir_all(&share).unwrap();
        std::fs::write(share.join("in process.txt"), b"12345").unwrap();
        let a = spawn(config(&temp.path().join("a"), Vec::new())).unwrap();
        let b = spawn(config(&temp.path().join("b"), vec![share])).unwrap();
        assert!(a.command(&format!("connect {}", b.addr)).ok);
        let files = |s: &RunningServent| {
            s.command("shares")
                .reply
                .and_then(|r| r.data.get("files")?.as_u64())
                .unwrap_or(0)
        };
        assert!(wait(|| files(&b) == 1));
        let established = |s: &RunningServent| {
            s.command("stats")
                .reply
                .and_then(|r| r.data.get("established")?.as_u64())
                .unwrap_or(0)
        };
        assert!(wait(|| established(&a) == 1));
        let search = a.command("search in process");
        assert!(search.ok, "{search:?}");
        assert!(wait(|| {
            a.command("results").reply.is_some_and(|r| {
                r.data
                    .as_array()
                    .is_some_and(|hits| hits.iter().any(|h| h["name"] == "in process.txt"))
            })
        }));
        // The control socket works for these too.
        let via_socket = control::send_command(
            &temp.path().join("a").join(CONTROL_SOCKET),
            "peers",
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(via_socket.ok);
        b.stop().unwrap();
        assert!(wait(|| established(&a) == 0));
        a.stop().unwrap();
        assert!(temp.path().join("a").join(HOST_CACHE_FILE).exists());
    }
}
