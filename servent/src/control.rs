//! The control socket `<data-dir>/control.sock`: a Unix stream socket on which
//! each request is one command line and each answer one JSON line (a
//! [`Response`]). `hazel ctl` is its client; the headless servent its server.
//!
//! The server runs on its own threads and hands parsed commands to the
//! reactor through a [`Requests`] handle, so a slow or stuck client never
//! holds up the event loop.

use crate::shell::{answer_line, Requests, Response, MAX_LINE};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

/// How long the server waits for a client's request line, and for the reactor's answer.
const CLIENT_IDLE: Duration = Duration::from_secs(30);
const REACTOR_ANSWER: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 16;

/// The listening control socket; its file is removed when this is dropped.
pub struct ControlServer {
    path: PathBuf,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` and serves it on background threads.
///
/// A leftover socket file from a servent that died is replaced; a live one
/// (something accepts on it) is an error, so two servents never share a data dir.
pub fn serve<R: Requests>(path: &Path, requests: R) -> io::Result<ControlServer> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by a running servent", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    let active = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                use std::sync::atomic::Ordering;
                if active.load(Ordering::SeqCst) >= MAX_CLIENTS {
                    let mut stream = stream;
                    let _ = writeln!(
                        stream,
                        "{}",
                        to_line(&Response::error("too many control clients"))
                    );
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let requests = requests.clone();
                let counter = active.clone();
                let spawned =
                    thread::Builder::new()
                        .name("control-client".into())
                        .spawn(move || {
                            if let Err(e) = serve_client(stream, &requests) {
                                log::debug!("control client: {e}");
                            }
                            counter.fetch_sub(1, Ordering::SeqCst);
                        });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })?;
    Ok(ControlServer {
        path: path.to_path_buf(),
    })
}

fn to_line(response: &Response) -> String {
    serde_json::to_string(response)
        .unwrap_or_else(|_| r#"{"ok":false,"error":"reply could not be encoded"}"#.to_string())
}

/// Answers request lines until the client closes or idles.
fn serve_client<R: Requests>(stream: UnixStream, requests: &R) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_IDLE))?;
    stream.set_write_timeout(Some(CLIENT_IDLE))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(line) = read_bounded_line(&mut reader)? else {
            return Ok(());
        };
        let response = match line {
            Ok(line) => answer_line(requests, &line, REACTOR_ANSWER),
            Err(too_long) => too_long,
        };
        writer.write_all(to_line(&response).as_bytes())?;
        writer.write_all(b"\n")?;
        writer.flush()?;
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes. `None` at end of stream; an
/// over-long or non-UTF-8 line is consumed and answered with an error response.
fn read_bounded_line<B: BufRead>(reader: &mut B) -> io::Result<Option<Result<String, Response>>> {
    let mut bytes = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut bytes)?;
    if n == 0 {
        return Ok(None);
    }
    if !bytes.ends_with(b"\n") && bytes.len() > MAX_LINE {
        // Skip the rest of the over-long line (bounded by the idle timeout).
        let mut sink = Vec::new();
        loop {
            sink.clear();
            let n = reader
                .by_ref()
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut sink)?;
            if n == 0 || sink.ends_with(b"\n") {
                break;
            }
        }
        return Ok(Some(Err(Response::error(format!(
            "command longer than {MAX_LINE} bytes"
        )))));
    }
    match String::from_utf8(bytes) {
        Ok(line) => Ok(Some(Ok(line.trim_end_matches(['\n', '\r']).to_string()))),
        Err(_) => Ok(Some(Err(Response::error("command is not UTF-8")))),
    }
}

/// The client side: sends one command line and returns the servent's response.
pub fn send_command(socket: &Path, line: &str, timeout: Duration) -> io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let line = line.replace(['\n', '\r'], " ");
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\n")?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the servent closed the control connection without answering",
        ));
    }
    serde_json::from_str(&answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::{Command, Reply};

    /// Answers like a servent would for the two commands the tests send.
    #[derive(Clone)]
    struct Echo;
    impl Requests for Echo {
        fn request(&self, command: Command, _timeout: Duration) -> Response {
            Response::ok(Reply::message(format!("{command:?}")))
        }
    }

    #[test]
    fn a_request_line_gets_one_response_line_and_errors_are_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let server = serve(&path, Echo).unwrap();
        let ok = send_command(&path, "peers", Duration::from_secs(5)).unwrap();
        assert_eq!(ok.to_text(), "Peers");
        let bad = send_command(&path, "fly away", Duration::from_secs(5)).unwrap();
        assert!(!bad.ok);
        assert_eq!(bad.to_text(), "error: unknown command `fly` (try `help`)");
        let long = send_command(&path, &"x".repeat(MAX_LINE * 3), Duration::from_secs(5)).unwrap();
        assert!(!long.ok);
        // The server keeps serving after all that.
        let again = send_command(&path, "stats", Duration::from_secs(5)).unwrap();
        assert_eq!(again.to_text(), "Stats");
        drop(server);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_socket_is_not_taken_over_but_a_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let first = serve(&path, Echo).unwrap();
        assert!(serve(&path, Echo).is_err());
        std::mem::forget(first); // the file stays, as after a crash...
                                 // ...but a listener still exists in this process; emulate a dead one.
        std::fs::remove_file(&path).unwrap();
        let stale = UnixListener::bind(&path).unwrap();
        drop(stale);
        let second = serve(&path, Echo).unwrap();
        assert!(
            send_command(&path, "peers", Duration::from_secs(5))
                .unwrap()
                .ok
        );
        drop(second);
    }
}
