//! The event loop: the only module that touches sockets through mio.
//!
//! One thread runs [`Reactor::run`]. It owns the listening socket, a `Slab` of
//! connections and the timers, and drives a [`Handler`] (the sans-IO servent)
//! with bytes, connection events and the current time. The handler answers
//! with [`Action`]s and keeps every connection's output; the reactor pulls
//! that output only when the socket can take it, so the handler's send queues
//! (and their drop policy) see real back-pressure. The reactor knows nothing
//! of what the handler is asked by other threads: requests and their answers
//! are the handler's own types ([`Handler::Request`], [`Handler::Response`]).
//!
//! Mechanics, and why:
//! - One port for everything: a new socket is *sniffed* — its first bytes must
//!   start `GNUTELLA CONNECT/` (overlay, handed to the handler with the sniffed
//!   bytes), `GET ` or `HEAD ` (HTTP upload) or `GIV ` (push callback);
//!   anything else, or silence, closes it.
//! - Connection ids ([`ConnId`]) come from a counter and never repeat, though
//!   slab keys (mio tokens) are reused; the handler only ever sees ids.
//! - Reads and writes drain until `WouldBlock` (readiness is edge-triggered).
//!   A read budget per wake-up keeps one flooding peer from starving the rest;
//!   a connection cut short is remembered and continued on the next turn.
//! - WRITABLE interest is registered only while output is pending.
//! - Outgoing connects are non-blocking: a writable event, then `take_error`
//!   and `peer_addr` tell success from failure; a deadline bounds them.
//! - Other threads (stdin, control socket, signals, the library scanner) talk
//!   to the loop through a crossbeam channel plus a mio `Waker` ([`Handle`]).

pub use crate::core::ids::{ConnId, Direction};
use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a connection is for: what an incoming one was sniffed as, or what
/// an outgoing one was opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GNUTELLA CONNECT/`: an overlay handshake.
    Overlay,
    /// `GET ` or `HEAD `: an HTTP request for a shared file.
    Http,
    /// `GIV `: a firewalled servent answering our Push (incoming), or our
    /// callback answering a Push (outgoing).
    Giv,
    /// Outgoing only: an HTTP connection fetching a download.
    Download,
    /// Outgoing only: an HTTP request to a web host cache (GWebCache).
    Cache,
    /// Outgoing only: a session with an OpenNap index server.
    Index,
    /// The Napster data port: accepted on the second listener (nothing is
    /// sniffed: the accepting side speaks first), or opened to a peer's.
    NapsterData,
}

/// What the handler asks the reactor to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open an overlay connection; success is reported with `on_connection`,
    /// failure with `on_connect_failed`.
    Connect(SocketAddr),
    /// Open a connection for another purpose (a GIV callback: [`Kind::Giv`]);
    /// reported like `Connect`, with this kind.
    ConnectAs(SocketAddr, Kind),
    /// Write what is queued for this connection, then close it.
    Close(ConnId),
    /// This connection has new output.
    WantWrite(ConnId),
    /// Stop reading this connection (its bytes wait in the kernel, which
    /// slows the sender down) until `ResumeReading`.
    PauseReading(ConnId),
    ResumeReading(ConnId),
    /// Send a UDP datagram from our port (dropped if the socket cannot take it now).
    SendDatagram(SocketAddr, Vec<u8>),
    /// Something a user may want to see (printed by the terminal, logged headless).
    Event(String),
}

/// What a connection has to write next.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset`: sent with `sendfile(2)`, without
    /// a copy through user space (read and written when the file system
    /// cannot). Bytes the file turns out not to have close the connection.
    File {
        file: &'a std::fs::File,
        offset: u64,
        len: u64,
    },
}

impl Output<'_> {
    pub fn is_empty(&self) -> bool {
        match self {
            Output::Bytes(bytes) => bytes.is_empty(),
            Output::File { len, .. } => *len == 0,
        }
    }
}

impl<'a> From<&'a [u8]> for Output<'a> {
    fn from(bytes: &'a [u8]) -> Output<'a> {
        Output::Bytes(bytes)
    }
}

/// Sends up to `len` bytes of `file` from `offset` on `socket`; where the
/// file system has no `sendfile`, reads them into `scratch` and writes them.
/// `Ok(0)` means the file ended early.
fn send_file(
    socket: &TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: usize,
    scratch: &mut [u8],
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let Ok(mut off) = libc::off_t::try_from(offset) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: both descriptors are open for the duration of the call (borrowed
    // above), and `off` is a valid off_t the kernel updates.
    let n = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut off, len) };
    if let Ok(n) = usize::try_from(n) {
        return Ok(n);
    }
    let error = io::Error::last_os_error();
    if !matches!(error.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
        return Err(error);
    }
    let want = len.min(scratch.len());
    let got = file.read_at(&mut scratch[..want], offset)?;
    if got == 0 {
        return Ok(0);
    }
    (&*socket).write(&scratch[..got])
}

/// Whether the loop goes on after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Begin the orderly shutdown ([`Handler::shutdown`], a grace period, a
    /// last save).
    Quit,
}

/// The servent as the reactor sees it: a sans-IO state machine.
///
/// Contract: every `on_*` call may queue actions and output; the reactor then
/// drains [`Handler::poll_action`] and flushes the output of every connection
/// named in a `WantWrite`. Ids handed in are never reused.
pub trait Handler {
    /// What other threads ask of the loop (through a [`Handle`]).
    type Request: Send + 'static;
    /// The answer to a request.
    type Response: Send + 'static;
    /// A connection is ready: an incoming one sniffed as [`Kind`] (its first
    /// bytes follow in `on_bytes`), or an outgoing connect that completed.
    fn on_connection(
        &mut self,
        id: ConnId,
        direction: Direction,
        kind: Kind,
        peer: SocketAddr,
        now: Instant,
    );
    /// An outgoing connect to `addr` (opened for `kind`) failed or timed out;
    /// `error` says why, for the user.
    fn on_connect_failed(&mut self, addr: SocketAddr, kind: Kind, error: &str, now: Instant);
    /// Bytes arrived on a connection.
    fn on_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant);
    /// A UDP datagram arrived on our port (untrusted: any bytes, any sender).
    fn on_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        let _ = (from, bytes, now);
    }
    /// The connection is gone (peer closed, error, or after our `Close`).
    fn on_closed(&mut self, id: ConnId, now: Instant);
    /// Time passed; `now` is at or after the last `poll_timeout`.
    fn handle_timeout(&mut self, now: Instant);
    /// When the handler next needs `handle_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next action, if any.
    fn poll_action(&mut self) -> Option<Action>;
    /// What is ready to be written on `id` (empty when none).
    fn output(&mut self, id: ConnId) -> Output<'_>;
    /// `n` bytes of `output(id)` were written (for [`Output::File`], the
    /// first `n` bytes of the span).
    fn consume_output(&mut self, id: ConnId, n: usize);
    /// Another thread woke the loop (e.g. a new library is ready to be taken).
    fn on_wake(&mut self, now: Instant);
    /// What to write to a connection of `kind` refused because every socket
    /// the open-file limit allows is in use (a `503`), before closing it.
    fn refusal(&mut self, kind: Kind, peer: SocketAddr) -> Vec<u8>;
    /// A request from another thread, and whether to quit after it. Requests
    /// keep coming while shutting down: the handler answers them as it sees fit.
    fn request(&mut self, request: Self::Request, now: Instant) -> (Self::Response, Flow);
    /// Begin an orderly shutdown: say Bye, close connections.
    fn shutdown(&mut self, now: Instant);
    /// Save what must survive a restart (the host cache). Called periodically and at exit.
    fn save(&mut self);
}

/// A request from another thread, with where to send the answer.
struct Envelope<Req, Resp> {
    request: Req,
    reply: Sender<Resp>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The loop has ended.
    Gone,
    /// No answer within the timeout.
    Timeout,
}

/// How other threads reach the loop. Cheap to clone.
pub struct Handle<Req, Resp> {
    requests: Sender<Envelope<Req, Resp>>,
    waker: Arc<Waker>,
}

impl<Req, Resp> Clone for Handle<Req, Resp> {
    fn clone(&self) -> Self {
        Handle {
            requests: self.requests.clone(),
            waker: Arc::clone(&self.waker),
        }
    }
}

impl<Req, Resp> Handle<Req, Resp> {
    /// Wakes the loop so it calls [`Handler::on_wake`].
    pub fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            log::warn!("waking the event loop: {e}");
        }
    }

    /// Hands `request` to the loop and waits up to `timeout` for the answer.
    pub fn request(&self, request: Req, timeout: Duration) -> Result<Resp, RequestError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        if self.requests.send(Envelope { request, reply }).is_err() {
            return Err(RequestError::Gone);
        }
        self.wake();
        answer.recv_timeout(timeout).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => RequestError::Timeout,
            crossbeam_channel::RecvTimeoutError::Disconnected => RequestError::Gone,
        })
    }
}

/// Tunables of the loop; the defaults suit a servent.
#[derive(Debug, Clone)]
pub struct ReactorConfig {
    /// An incoming socket must say what it is within this time.
    pub sniff_timeout: Duration,
    /// An outgoing connect must complete within this time.
    pub connect_timeout: Duration,
    /// After `Close`, queued output gets this long to drain.
    pub close_linger: Duration,
    /// After `quit`, peers get this long for their Bye and our last bytes.
    pub shutdown_grace: Duration,
    /// How often the handler is asked to save.
    pub save_interval: Duration,
    /// Most sockets open at once (listener excluded), sized from the open-file
    /// limit by [`socket_budget`]. The last [`REFUSAL_SOCKETS`] of them only
    /// ever carry a refusal (`503`); when even those are taken, the
    /// connection that has said least for longest (still silent after
    /// [`EVICT_AFTER`]) is closed to make room, and only then is a new
    /// connection closed unanswered.
    pub max_sockets: usize,
}

/// Sockets of the budget kept for answering `503` while every other is busy.
pub const REFUSAL_SOCKETS: usize = 16;
/// A connection silent this long may be closed to make room for a new one.
pub const EVICT_AFTER: Duration = Duration::from_secs(1);
/// How long a refused connection gets to say what it is.
const REFUSAL_SNIFF: Duration = Duration::from_secs(2);

/// Sockets to allow under an open-file limit of `fd_limit`, keeping
/// `reserved` descriptors for everything else (files being uploaded or
/// hashed, the control socket and its clients, the data directory, stdio,
/// the poller). Never fewer than the refusal sockets plus a few.
pub fn socket_budget(fd_limit: u64, reserved: usize) -> usize {
    let limit = usize::try_from(fd_limit).unwrap_or(usize::MAX);
    limit.saturating_sub(reserved).max(REFUSAL_SOCKETS + 8)
}

impl Default for ReactorConfig {
    fn default() -> Self {
        ReactorConfig {
            sniff_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            close_linger: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(2),
            save_interval: Duration::from_secs(60),
            max_sockets: 4096,
        }
    }
}

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const UDP: Token = Token(usize::MAX - 3);
const NAPSTER_LISTENER: Token = Token(usize::MAX - 4);
/// Datagrams read per turn before giving the connections their turn.
const UDP_BUDGET: usize = 256;

/// Longest sniff prefix we need to see.
const SNIFF_MAX: usize = 17; // "GNUTELLA CONNECT/"
/// Bytes read per connection per wake-up before giving others a turn.
const READ_BUDGET: usize = 256 * 1024;
/// Bytes written per connection per turn before giving others a turn: one
/// fast reader of a large upload must not hold up routing, the control
/// socket or the other transfers.
const WRITE_BUDGET: usize = 256 * 1024;
/// The read buffer: also the largest datagram read (a Gnutella one is far
/// smaller; a longer one is cut and then fails to decode).
const SCRATCH: usize = 64 * 1024;
/// Pause before accepting again after `accept` failed (e.g. no file descriptors left).
const ACCEPT_RETRY: Duration = Duration::from_millis(250);

const MAGICS: [(&[u8], Kind); 4] = [
    (b"GNUTELLA CONNECT/", Kind::Overlay),
    (b"GET ", Kind::Http),
    (b"HEAD ", Kind::Http),
    (b"GIV ", Kind::Giv),
];

/// A connect error as a user reads it: what happened, without the errno.
fn connect_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused (nothing listens there)".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => "unreachable".into(),
        _ => e.to_string(),
    }
}

/// The verdict on the first bytes of an incoming socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Still a prefix of something we serve.
    NeedMore,
    /// Decided.
    Is(Kind),
    /// None of ours: close it.
    Foreign,
}

/// Classifies the first bytes of an incoming socket.
pub fn sniff(prefix: &[u8]) -> Sniff {
    let mut maybe = false;
    for (magic, kind) in MAGICS {
        if prefix.len() >= magic.len() {
            if prefix.starts_with(magic) {
                return Sniff::Is(kind);
            }
        } else if magic.starts_with(prefix) {
            maybe = true;
        }
    }
    if maybe {
        Sniff::NeedMore
    } else {
        Sniff::Foreign
    }
}

enum State {
    /// Incoming, waiting for the first bytes.
    Sniffing { prefix: Vec<u8>, deadline: Instant },
    /// Outgoing, connect in progress.
    Connecting { deadline: Instant, kind: Kind },
    /// Accepted over the budget: waiting for the first bytes, to be answered
    /// with the handler's refusal and closed.
    Refusing { prefix: Vec<u8>, deadline: Instant },
    /// Handed to the engine.
    Open,
    /// The handler asked to close: flush its output, then close.
    Closing { deadline: Instant },
}

struct Conn {
    id: ConnId,
    socket: TcpStream,
    peer: SocketAddr,
    state: State,
    /// WRITABLE currently registered.
    writable: bool,
    /// Listed in `unfinished_reads` (at most once: a connection listed again
    /// on every turn would be read ever more often and starve the writes).
    read_listed: bool,
    /// Listed in `unfinished_writes` (at most once, likewise).
    write_listed: bool,
    /// The handler asked not to read it for now.
    read_paused: bool,
}

/// The event loop and everything it owns.
pub struct Reactor<E: Handler> {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    conns: Slab<Conn>,
    by_id: HashMap<ConnId, usize>,
    next_id: ConnId,
    handler: E,
    requests: Receiver<Envelope<E::Request, E::Response>>,
    handle: Handle<E::Request, E::Response>,
    config: ReactorConfig,
    /// Connections whose read budget ran out with data possibly left.
    unfinished_reads: VecDeque<ConnId>,
    /// Connections whose write budget ran out with output left.
    unfinished_writes: VecDeque<ConnId>,
    /// Connections with new output to flush at the end of this turn.
    dirty: Vec<ConnId>,
    scratch: Box<[u8]>,
    quitting: Option<Instant>,
    next_save: Instant,
    /// Accepting failed (out of file descriptors): try again at this time,
    /// since an edge-triggered listener gives no new event for the backlog.
    accept_retry: Option<Instant>,
    /// A descriptor held in reserve: when `accept` fails for want of
    /// descriptors, it is closed to accept (and close) the waiting
    /// connection, so the backlog drains instead of failing in a loop.
    spare_fd: Option<std::fs::File>,
    /// Connections in `State::Refusing`.
    refusing: usize,
    /// The UDP socket on our port, when it could be bound.
    udp: Option<mio::net::UdpSocket>,
    /// The UDP budget ran out with datagrams possibly left.
    udp_unfinished: bool,
    /// Datagrams that could not be sent (the socket buffer was full).
    pub udp_send_dropped: u64,
    /// The Napster data port, when there is one.
    napster_listener: Option<TcpListener>,
}

impl<E: Handler> Reactor<E> {
    /// Takes an already-bound listener (tests bind port 0 and read it back)
    /// and builds the handler with a [`Handle`], so the handler can hand it to
    /// threads that must wake the loop (the library scanner).
    pub fn new<F>(
        listener: std::net::TcpListener,
        config: ReactorConfig,
        make_handler: F,
    ) -> io::Result<Reactor<E>>
    where
        F: FnOnce(Handle<E::Request, E::Response>) -> io::Result<E>,
    {
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        // UDP on the same address and port; without it the servent still
        // works over TCP (host caches then go unasked).
        let udp = match std::net::UdpSocket::bind(local_addr) {
            Ok(socket) => {
                socket.set_nonblocking(true)?;
                let mut socket = mio::net::UdpSocket::from_std(socket);
                poll.registry()
                    .register(&mut socket, UDP, Interest::READABLE)?;
                Some(socket)
            }
            Err(e) => {
                log::warn!("no UDP on {local_addr}: {e}; UDP host caches and pings are off");
                None
            }
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = Handle {
            requests: tx,
            waker,
        };
        let handler = make_handler(handle.clone())?;
        let next_save = Instant::now() + config.save_interval;
        Ok(Reactor {
            poll,
            listener,
            local_addr,
            conns: Slab::new(),
            by_id: HashMap::new(),
            next_id: 1,
            handler,
            requests: rx,
            handle,
            config,
            unfinished_reads: VecDeque::new(),
            unfinished_writes: VecDeque::new(),
            dirty: Vec::new(),
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
            quitting: None,
            next_save,
            accept_retry: None,
            spare_fd: std::fs::File::open("/dev/null").ok(),
            refusing: 0,
            udp,
            udp_unfinished: false,
            udp_send_dropped: 0,
            napster_listener: None,
        })
    }

    /// Also accepts Napster data-port connections on `listener` (already
    /// bound); they reach the handler as [`Kind::NapsterData`] at once.
    pub fn add_napster_listener(&mut self, listener: std::net::TcpListener) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        self.poll
            .registry()
            .register(&mut listener, NAPSTER_LISTENER, Interest::READABLE)?;
        self.napster_listener = Some(listener);
        Ok(())
    }

    /// The Napster data port, when there is one.
    pub fn napster_port(&self) -> Option<u16> {
        self.napster_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// Accepts every waiting data-port connection (beyond the socket
    /// budget, they are closed at once).
    fn accept_napster(&mut self, now: Instant) {
        loop {
            let Some(listener) = &self.napster_listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => {
                    if self.quitting.is_some() || self.ordinary_sockets() >= self.ordinary_budget()
                    {
                        drop(socket);
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    match self.insert(socket, peer, State::Open, Interest::READABLE) {
                        Ok(id) => {
                            self.handler.on_connection(
                                id,
                                Direction::Incoming,
                                Kind::NapsterData,
                                peer,
                                now,
                            );
                            self.dirty.push(id);
                        }
                        Err(e) => log::warn!("registering {peer}: {e}"),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        log::warn!("napster accept: {e}");
                    }
                    return;
                }
            }
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle<E::Request, E::Response> {
        self.handle.clone()
    }

    /// The handler, e.g. for a final look after `run` returns.
    pub fn handler(&self) -> &E {
        &self.handler
    }

    /// Runs until `quit`: then Bye, a short grace period, a final save.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if let Some(started) = self.quitting {
                if self.conns.is_empty() || now >= started + self.config.shutdown_grace {
                    break;
                }
            }
            let timeout = if self.unfinished_reads.is_empty()
                && self.unfinished_writes.is_empty()
                && !self.udp_unfinished
            {
                self.next_deadline(now)
                    .map(|d| d.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    NAPSTER_LISTENER => self.accept_napster(now),
                    UDP => self.read_datagrams(now),
                    WAKER => {
                        self.take_requests(now);
                        self.handler.on_wake(now);
                    }
                    Token(key) => self.socket_ready(key, event, now),
                }
            }
            if self.udp_unfinished {
                self.read_datagrams(now);
            }
            self.continue_reads(now);
            self.continue_writes(now);
            self.timers(now);
            self.after_turn(now);
        }
        // Close what is left; the process is about to go.
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.drop_conn(key, Instant::now());
        }
        self.handler.save();
        Ok(())
    }

    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let mut next = self.next_save;
        if let Some(t) = self.handler.poll_timeout() {
            next = next.min(t);
        }
        if let Some(started) = self.quitting {
            next = next.min(started + self.config.shutdown_grace);
        }
        if let Some(retry) = self.accept_retry {
            next = next.min(retry);
        }
        for (_, conn) in &self.conns {
            match conn.state {
                State::Sniffing { deadline, .. }
                | State::Refusing { deadline, .. }
                | State::Connecting { deadline, .. }
                | State::Closing { deadline } => next = next.min(deadline),
                State::Open => {}
            }
        }
        Some(next.max(now))
    }

    fn take_requests(&mut self, now: Instant) {
        while let Ok(envelope) = self.requests.try_recv() {
            let (response, flow) = self.handler.request(envelope.request, now);
            if flow == Flow::Quit {
                self.begin_quit(now);
            }
            let _ = envelope.reply.send(response);
        }
    }

    /// Starts the shutdown (also used for signals, which arrive as `quit`).
    fn begin_quit(&mut self, now: Instant) {
        if self.quitting.is_none() {
            log::info!("shutting down");
            self.quitting = Some(now);
            self.handler.shutdown(now);
        }
    }

    /// Sockets in use that count against the budget's ordinary part.
    fn ordinary_sockets(&self) -> usize {
        self.conns.len() - self.refusing
    }

    fn ordinary_budget(&self) -> usize {
        self.config
            .max_sockets
            .saturating_sub(REFUSAL_SOCKETS)
            .max(1)
    }

    /// Closes the incoming connection that has said nothing for longest
    /// (still sniffing after [`EVICT_AFTER`]); false when there is none.
    fn evict_silent(&mut self, now: Instant) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter_map(|(key, c)| match c.state {
                State::Sniffing { deadline, .. } => Some((deadline, key)),
                _ => None,
            })
            .min();
        let Some((deadline, key)) = oldest else {
            return false;
        };
        let accepted = deadline
            .checked_sub(self.config.sniff_timeout)
            .unwrap_or(now);
        if now.saturating_duration_since(accepted) < EVICT_AFTER {
            return false;
        }
        log::debug!("closing silent {} to make room", self.conns[key].peer);
        self.remove_silently(key);
        true
    }

    fn accept_all(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((socket, peer)) => {
                    if self.quitting.is_some() {
                        drop(socket);
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    let full = self.ordinary_sockets() >= self.ordinary_budget();
                    let state = if !full || self.evict_silent(now) {
                        State::Sniffing {
                            prefix: Vec::with_capacity(SNIFF_MAX),
                            deadline: now + self.config.sniff_timeout,
                        }
                    } else if self.refusing < REFUSAL_SOCKETS {
                        self.refusing += 1;
                        State::Refusing {
                            prefix: Vec::with_capacity(SNIFF_MAX),
                            deadline: now + REFUSAL_SNIFF,
                        }
                    } else {
                        log::debug!("closing {peer} unanswered: every socket is in use");
                        drop(socket);
                        continue;
                    };
                    let refusing = matches!(state, State::Refusing { .. });
                    if let Err(e) = self.insert(socket, peer, state, Interest::READABLE) {
                        log::warn!("registering {peer}: {e}");
                        if refusing {
                            self.refusing -= 1;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    // Out of descriptors (something outside the budget took
                    // them): use the spare to take the waiting connection
                    // off the backlog and close it, and make room.
                    self.evict_silent(now);
                    match self.spare_fd.take() {
                        Some(spare) => {
                            drop(spare);
                            if let Ok((socket, peer)) = self.listener.accept() {
                                log::warn!("out of file descriptors: closing {peer} unanswered");
                                drop(socket);
                            }
                            self.spare_fd = std::fs::File::open("/dev/null").ok();
                            if self.spare_fd.is_none() {
                                self.accept_retry = Some(now + ACCEPT_RETRY);
                                return;
                            }
                        }
                        None => {
                            log::warn!("accept: {e}");
                            self.accept_retry = Some(now + ACCEPT_RETRY);
                            return;
                        }
                    }
                }
                Err(e) => {
                    log::warn!("accept: {e}");
                    self.accept_retry = Some(now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// A connection accepted over the budget: once it says what it is, write
    /// the handler's refusal (best effort, one write) and close it.
    fn read_refusing(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let State::Refusing { prefix, .. } = &mut conn.state else {
            return;
        };
        let mut buf = [0u8; SNIFF_MAX];
        let mut closed = false;
        // Edge-triggered: read until it would block or the kind is known.
        while prefix.len() < SNIFF_MAX && sniff(prefix) == Sniff::NeedMore {
            let room = SNIFF_MAX - prefix.len();
            match conn.socket.read(&mut buf[..room]) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => prefix.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let verdict = sniff(prefix);
        if verdict == Sniff::NeedMore && !closed && prefix.len() < SNIFF_MAX {
            return;
        }
        if let Sniff::Is(kind) = verdict {
            let peer = conn.peer;
            let answer = self.handler.refusal(kind, peer);
            if let Some(conn) = self.conns.get_mut(key) {
                let _ = conn.socket.write(&answer);
            }
            log::info!("refused {peer}: every socket is in use");
        }
        let _ = now;
        self.remove_silently(key);
    }

    fn insert(
        &mut self,
        mut socket: TcpStream,
        peer: SocketAddr,
        state: State,
        interest: Interest,
    ) -> io::Result<ConnId> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut socket, Token(key), interest)?;
        let id = self.next_id;
        self.next_id += 1;
        entry.insert(Conn {
            id,
            socket,
            peer,
            state,
            writable: interest.is_writable(),
            read_listed: false,
            write_listed: false,
            read_paused: false,
        });
        self.by_id.insert(id, key);
        Ok(id)
    }

    fn connect(&mut self, addr: SocketAddr, kind: Kind, now: Instant) {
        if self.quitting.is_some() {
            self.handler
                .on_connect_failed(addr, kind, "the servent is shutting down", now);
            return;
        }
        if self.ordinary_sockets() >= self.ordinary_budget() {
            self.handler.on_connect_failed(
                addr,
                kind,
                "no free socket: every one allowed by the open-file limit is in use",
                now,
            );
            return;
        }
        let result = TcpStream::connect(addr).and_then(|socket| {
            let state = State::Connecting {
                deadline: now + self.config.connect_timeout,
                kind,
            };
            self.insert(socket, addr, state, Interest::READABLE | Interest::WRITABLE)
        });
        if let Err(e) = result {
            log::debug!("connect {addr}: {e}");
            self.handler
                .on_connect_failed(addr, kind, &connect_error(&e), now);
        }
    }

    fn socket_ready(&mut self, key: usize, event: &mio::event::Event, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return; // closed earlier in this turn
        };
        match conn.state {
            State::Connecting { .. } => {
                if event.is_writable() || event.is_error() || event.is_write_closed() {
                    self.finish_connect(key, now);
                }
            }
            State::Sniffing { .. } => self.read_sniff(key, now),
            State::Refusing { .. } => self.read_refusing(key, now),
            State::Open | State::Closing { .. } => {
                let id = conn.id;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_open(key, now);
                }
                if event.is_writable() && self.conns.get(key).is_some_and(|c| c.id == id) {
                    self.flush(id, now);
                }
            }
        }
    }

    fn finish_connect(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let failed = match conn.socket.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match conn.socket.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return, // spurious
                Err(e) => Some(e),
            },
        };
        let addr = conn.peer;
        let kind = match conn.state {
            State::Connecting { kind, .. } => kind,
            _ => Kind::Overlay,
        };
        if let Some(e) = failed {
            log::debug!("connect {addr}: {e}");
            self.remove_silently(key);
            self.handler
                .on_connect_failed(addr, kind, &connect_error(&e), now);
            return;
        }
        let _ = conn.socket.set_nodelay(true);
        conn.state = State::Open;
        let id = conn.id;
        // Drop WRITABLE until there is output.
        if let Err(e) =
            self.poll
                .registry()
                .reregister(&mut conn.socket, Token(key), Interest::READABLE)
        {
            log::debug!("reregister {addr}: {e}");
        }
        conn.writable = false;
        self.handler
            .on_connection(id, Direction::Outgoing, kind, addr, now);
        self.dirty.push(id);
    }

    fn read_sniff(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let State::Sniffing { prefix, .. } = &mut conn.state else {
            return;
        };
        let mut closed = false;
        loop {
            let room = SNIFF_MAX - prefix.len();
            let mut buf = [0u8; SNIFF_MAX];
            match conn.socket.read(&mut buf[..room]) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    prefix.extend_from_slice(&buf[..n]);
                    if sniff(prefix) != Sniff::NeedMore || prefix.len() >= SNIFF_MAX {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let verdict = sniff(prefix);
        match verdict {
            Sniff::Is(kind) => {
                let prefix = std::mem::take(prefix);
                conn.state = State::Open;
                let (id, peer) = (conn.id, conn.peer);
                self.handler
                    .on_connection(id, Direction::Incoming, kind, peer, now);
                self.handler.on_bytes(id, &prefix, now);
                self.dirty.push(id);
                if closed {
                    self.close_now(key, now);
                } else {
                    // More may be waiting behind the sniffed bytes.
                    self.read_open(key, now);
                }
            }
            Sniff::NeedMore if !closed => {}
            _ => {
                log::debug!("closing {}: not a Gnutella or HTTP client", conn.peer);
                self.remove_silently(key);
            }
        }
    }

    fn read_open(&mut self, key: usize, now: Instant) {
        let mut total = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.read_paused {
                // Read again on `ResumeReading`; the kernel holds the bytes.
                return;
            }
            let id = conn.id;
            match conn.socket.read(&mut self.scratch) {
                Ok(0) => {
                    self.close_now(key, now);
                    return;
                }
                Ok(n) => {
                    if matches!(conn.state, State::Open) {
                        self.handler.on_bytes(id, &self.scratch[..n], now);
                        self.dirty.push(id);
                    }
                    total += n;
                    if total >= READ_BUDGET {
                        if !conn.read_listed {
                            conn.read_listed = true;
                            self.unfinished_reads.push_back(id);
                        }
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("read {}: {e}", conn.peer);
                    self.close_now(key, now);
                    return;
                }
            }
        }
    }

    fn continue_reads(&mut self, now: Instant) {
        let pending: Vec<ConnId> = self.unfinished_reads.drain(..).collect();
        // Each connection at most once (see `Conn::read_listed`); the flood
        // test below trips this if the rule is broken.
        // (Ids of connections closed since they were listed stay in the list
        // and are skipped below, so the check is for repeats, not a count.)
        debug_assert!(
            {
                let mut seen = std::collections::HashSet::new();
                pending.iter().all(|id| seen.insert(*id))
            },
            "a connection listed twice"
        );
        for id in pending {
            if let Some(&key) = self.by_id.get(&id) {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.read_listed = false;
                }
                self.read_open(key, now);
            }
        }
    }

    /// Connections cut short by the write budget get their next turn.
    fn continue_writes(&mut self, now: Instant) {
        let pending: Vec<ConnId> = self.unfinished_writes.drain(..).collect();
        for id in pending {
            if let Some(&key) = self.by_id.get(&id) {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.write_listed = false;
                }
                self.flush(id, now);
            }
        }
    }

    /// Stops or restarts reading a connection.
    fn set_reading(&mut self, id: ConnId, paused: bool, now: Instant) {
        let Some(&key) = self.by_id.get(&id) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let was = conn.read_paused;
        conn.read_paused = paused;
        if was && !paused {
            // Edge-triggered: what arrived meanwhile gives no new event.
            if !conn.read_listed {
                conn.read_listed = true;
                self.unfinished_reads.push_back(id);
            }
        }
        let _ = now;
    }

    /// Writes the handler's output for `id` until it is empty, the socket is
    /// full or the connection's write budget for this turn is spent.
    fn flush(&mut self, id: ConnId, now: Instant) {
        let Some(&key) = self.by_id.get(&id) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if matches!(
            conn.state,
            State::Sniffing { .. } | State::Refusing { .. } | State::Connecting { .. }
        ) {
            return;
        }
        let mut failed = false;
        let mut written = 0;
        loop {
            if written >= WRITE_BUDGET {
                // Others get their turn; this one goes on next turn.
                if !conn.write_listed {
                    conn.write_listed = true;
                    self.unfinished_writes.push_back(id);
                }
                break;
            }
            let result = match self.handler.output(id) {
                Output::Bytes([]) | Output::File { len: 0, .. } => break,
                Output::Bytes(bytes) => conn.socket.write(bytes),
                Output::File { file, offset, len } => {
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    send_file(
                        &conn.socket,
                        file,
                        offset,
                        len.min(WRITE_BUDGET - written),
                        &mut self.scratch,
                    )
                }
            };
            match result {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    written += n;
                    self.handler.consume_output(id, n)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("write {}: {e}", conn.peer);
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            self.close_now(key, now);
            return;
        }
        let pending = !self.handler.output(id).is_empty();
        if !pending && matches!(conn.state, State::Closing { .. }) {
            self.close_now(key, now);
            return;
        }
        if pending != conn.writable {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match self
                .poll
                .registry()
                .reregister(&mut conn.socket, Token(key), interest)
            {
                Ok(()) => conn.writable = pending,
                Err(e) => {
                    log::debug!("reregister {}: {e}", conn.peer);
                    self.close_now(key, now);
                }
            }
        }
    }

    fn timers(&mut self, now: Instant) {
        if self.accept_retry.is_some_and(|t| t <= now) {
            self.accept_retry = None;
            self.accept_all(now);
        }
        if self.handler.poll_timeout().is_some_and(|t| t <= now) {
            self.handler.handle_timeout(now);
        }
        let expired: Vec<(usize, Option<Kind>)> = self
            .conns
            .iter()
            .filter_map(|(key, conn)| match conn.state {
                State::Sniffing { deadline, .. } | State::Refusing { deadline, .. }
                    if deadline <= now =>
                {
                    Some((key, None))
                }
                State::Connecting { deadline, kind } if deadline <= now => Some((key, Some(kind))),
                State::Closing { deadline } if deadline <= now => Some((key, None)),
                _ => None,
            })
            .collect();
        for (key, connecting) in expired {
            if let Some(kind) = connecting {
                let addr = self.conns[key].peer;
                self.remove_silently(key);
                let secs = self.config.connect_timeout.as_secs();
                self.handler.on_connect_failed(
                    addr,
                    kind,
                    &format!("no answer within {secs} s"),
                    now,
                );
            } else if matches!(self.conns[key].state, State::Closing { .. }) {
                self.close_now(key, now);
            } else {
                self.remove_silently(key);
            }
        }
        if now >= self.next_save {
            self.next_save = now + self.config.save_interval;
            self.handler.save();
        }
    }

    /// Applies the handler's actions and flushes output, until the handler is quiet.
    fn after_turn(&mut self, now: Instant) {
        // Actions can cause more actions (a failed connect, a close); bounded
        // by the handler's own queues, and by this cap against a buggy loop.
        for _ in 0..64 {
            let mut any = false;
            while let Some(action) = self.handler.poll_action() {
                any = true;
                match action {
                    Action::Connect(addr) => self.connect(addr, Kind::Overlay, now),
                    Action::ConnectAs(addr, kind) => self.connect(addr, kind, now),
                    Action::Close(id) => self.begin_close(id, now),
                    Action::WantWrite(id) => self.dirty.push(id),
                    Action::PauseReading(id) => self.set_reading(id, true, now),
                    Action::ResumeReading(id) => self.set_reading(id, false, now),
                    Action::SendDatagram(to, bytes) => self.send_datagram(to, &bytes),
                    Action::Event(text) => self.event(text),
                }
            }
            if !self.dirty.is_empty() {
                any = true;
                let mut dirty = std::mem::take(&mut self.dirty);
                dirty.sort_unstable();
                dirty.dedup();
                for id in dirty {
                    self.flush(id, now);
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Reads datagrams until the socket is empty or the turn's budget is spent.
    fn read_datagrams(&mut self, now: Instant) {
        self.udp_unfinished = false;
        let Some(udp) = &self.udp else {
            return;
        };
        for _ in 0..UDP_BUDGET {
            match udp.recv_from(&mut self.scratch) {
                Ok((n, from)) => self.handler.on_datagram(from, &self.scratch[..n], now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // An ICMP error reported on the socket: nothing to do.
                    log::debug!("udp: {e}");
                    continue;
                }
            }
        }
        self.udp_unfinished = true;
    }

    fn send_datagram(&mut self, to: SocketAddr, bytes: &[u8]) {
        let Some(udp) = &self.udp else {
            return;
        };
        match udp.send_to(bytes, to) {
            Ok(_) => {}
            Err(e) => {
                self.udp_send_dropped += 1;
                log::debug!("udp to {to}: {e}");
            }
        }
    }

    /// The UDP port, when UDP could be bound.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|u| u.local_addr().ok())
    }

    fn event(&self, text: String) {
        log::info!("{text}");
    }

    fn begin_close(&mut self, id: ConnId, now: Instant) {
        let Some(&key) = self.by_id.get(&id) else {
            return;
        };
        let linger = self.config.close_linger;
        if let Some(conn) = self.conns.get_mut(key) {
            if matches!(conn.state, State::Open) {
                conn.state = State::Closing {
                    deadline: now + linger,
                };
            }
        }
        // Flush closes it at once when nothing is left to write.
        self.flush(id, now);
    }

    /// Closes a connection the handler knows about, and tells it.
    fn close_now(&mut self, key: usize, now: Instant) {
        if let Some(conn) = self.conns.get(key) {
            let id = conn.id;
            let known = matches!(conn.state, State::Open | State::Closing { .. });
            self.remove_silently(key);
            if known {
                self.handler.on_closed(id, now);
            }
        }
    }

    fn drop_conn(&mut self, key: usize, now: Instant) {
        self.close_now(key, now);
    }

    /// Deregisters and drops a socket without telling the engine.
    fn remove_silently(&mut self, key: usize) {
        if self.conns.contains(key) {
            let mut conn = self.conns.remove(key);
            if matches!(conn.state, State::Refusing { .. }) {
                self.refusing -= 1;
            }
            let _ = self.poll.registry().deregister(&mut conn.socket);
            self.by_id.remove(&conn.id);
        }
    }
}

#[cfg(test)]
mod tests;
