//! Reading commands from standard input: the interactive line-mode terminal
//! (a prompt, replies as text) and headless stdin (no prompt). Both run on
//! their own thread and reach the servent through a [`Requests`] handle.

use crate::shell::{answer_line, Requests, MAX_LINE};
use std::io::{self, BufRead, Write};
use std::thread;
use std::time::Duration;

/// How long a typed command may wait for the servent's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads stdin line by line on a new thread, printing each reply. With
/// `prompt` (the interactive terminal), shows `hazel> ` before every line and
/// end of input (Ctrl-D) quits the servent; headless, end of input only stops
/// reading (a servent started with stdin closed keeps running).
pub fn spawn_stdin<R: Requests>(requests: R, prompt: bool) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let quit = read_commands(io::stdin().lock(), io::stdout(), &requests, prompt);
        if prompt && !quit {
            println!();
            let _ = requests.request(crate::shell::Command::Quit, ANSWER_TIMEOUT);
        }
    })
}

/// The loop behind [`spawn_stdin`], on any reader and writer. Returns true
/// when it ended on a `quit`, false at end of input.
pub fn read_commands<R: Requests, I: BufRead, O: Write>(
    mut input: I,
    mut output: O,
    requests: &R,
    prompt: bool,
) -> bool {
    loop {
        if prompt {
            let _ = write!(output, "hazel> ");
            let _ = output.flush();
        }
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if line.trim().is_empty() {
            continue;
        }
        let response = if line.len() > MAX_LINE {
            crate::shell::Response::error(format!("command longer than {MAX_LINE} bytes"))
        } else {
            answer_line(requests, line.trim_end(), ANSWER_TIMEOUT)
        };
        let quit = response.ok
            && response
                .reply
                .as_ref()
                .is_some_and(|r| r.kind == "message" && r.data == "bye");
        let _ = writeln!(output, "{}", response.to_text());
        let _ = output.flush();
        if quit {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::{Command, Reply, Response};

    #[derive(Clone)]
    struct Named;
    impl Requests for Named {
        fn request(&self, command: Command, _: Duration) -> Response {
            match command {
                Command::Quit => Response::ok(Reply::message("bye")),
                other => Response::ok(Reply::message(format!("{other:?}"))),
            }
        }
    }

    #[test]
    fn each_line_gets_a_reply_and_bad_lines_do_not_stop_the_loop() {
        let input = b"peers\n\nnonsense here\nstats\nquit\nrescan\n";
        let mut out = Vec::new();
        assert!(read_commands(&input[..], &mut out, &Named, true));
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "hazel> Peers\nhazel> hazel> error: unknown command `nonsense` (try `help`)\n\
             hazel> Stats\nhazel> bye\n"
        );
        let mut out = Vec::new();
        assert!(!read_commands(&b"peers\n"[..], &mut out, &Named, false));
        assert_eq!(out, b"Peers\n");
    }
}
