//! Reading commands from standard input: the interactive line-mode terminal
//! (a prompt, replies as text) and headless stdin (no prompt). Both run on
//! their own thread and reach the servent through a [`Requests`] handle.

use crate::control::{answer_line, Requests};
use crate::shell::MAX_LINE;
use std::io::{self, BufRead, Write};
use std::thread;
use std::time::Duration;

/// How long a typed command may wait for the servent's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads stdin line by line on a new thread, printing each reply. With
/// `prompt`, shows `hazel> ` before every line. End of input stops reading but
/// not the servent (a headless servent started with stdin closed keeps running).
pub fn spawn_stdin<R: Requests>(requests: R, prompt: bool) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_commands(io::stdin().lock(), io::stdout(), &requests, prompt))
}

/// The loop behind [`spawn_stdin`], on any reader and writer.
pub fn read_commands<R: Requests, I: BufRead, O: Write>(
    mut input: I,
    mut output: O,
    requests: &R,
    prompt: bool,
) {
    loop {
        if prompt {
            let _ = write!(output, "hazel> ");
            let _ = output.flush();
        }
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return,
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
            return;
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
        read_commands(&input[..], &mut out, &Named, true);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "hazel> Peers\nhazel> hazel> error: unknown command `nonsense` (try `help`)\n\
             hazel> Stats\nhazel> bye\n"
        );
    }
}
