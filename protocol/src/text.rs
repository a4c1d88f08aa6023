//! Showing strings that came from the network to a person: on a terminal or in a log line.
//!
//! A peer chooses the bytes of a file name, a Bye reason, a `User-Agent`, a nick or a MOTD. Printed
//! raw, `ESC ]2;…BEL` retitles the user's terminal, `ESC [2J` clears it, a newline forges a line
//! (a fake prompt, a fake log entry) and a right-to-left override makes `gpj.exe` read as
//! `exe.jpg`. Everything from the network goes through [`Escaped`] (or [`escape_bytes`]) before it
//! reaches a terminal or a log; JSON output is not escaped this way (serde_json already writes
//! control characters as `\u00XX`, and JSON readers need the exact value).
//!
//! What is escaped, and how:
//! - C0 controls, DEL and C1 controls (U+0080–U+009F, e.g. the one-byte CSI U+009B):
//!   `\n`, `\r`, `\t`, `\e` (ESC) or `\xNN` / `\u{NN}`;
//! - Unicode format characters that reorder or hide text (bidi embeddings, overrides and isolates,
//!   zero-width joiners and marks, the byte-order mark, the line and paragraph separators):
//!   `\u{NNNN}`;
//! - with [`escape_bytes`], bytes that are not UTF-8: `\xNN`.
//!
//! Everything else, including a backslash, is shown as it is: names are for reading, and a name
//! with a backslash (TekNap writes paths with `\`) stays readable. A [`Escaped::max_chars`] cut
//! ends with `…`.

use std::fmt::{self, Write};

/// True for characters that must not reach a terminal as they are.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Zero-width space/joiners, LRM/RLM, ALM.
        | '\u{200b}'..='\u{200f}' | '\u{061c}'
        // Line and paragraph separators, bidi embeddings and overrides.
        | '\u{2028}'..='\u{202e}'
        // Word joiner, invisible operators, bidi isolates.
        | '\u{2060}'..='\u{2069}'
        // Byte-order mark / zero-width no-break space, interlinear annotations.
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

fn write_escaped_char(out: &mut impl Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\u{1b}' => out.write_str("\\e"),
        c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

/// A string shown safely: `format!("{}", Escaped::new(name))`. See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a> {
    text: &'a str,
    max_chars: usize,
}

impl<'a> Escaped<'a> {
    pub fn new(text: &'a str) -> Escaped<'a> {
        Escaped {
            text,
            max_chars: usize::MAX,
        }
    }

    /// Shows at most `max` characters of the original, then `…`.
    pub fn max_chars(mut self, max: usize) -> Escaped<'a> {
        self.max_chars = max;
        self
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Fast path: nothing to escape and no cut.
        if self.max_chars == usize::MAX && !self.text.chars().any(is_unsafe) {
            return f.write_str(self.text);
        }
        for (n, c) in self.text.chars().enumerate() {
            if n == self.max_chars {
                return f.write_char('…');
            }
            if is_unsafe(c) {
                write_escaped_char(f, c)?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// [`Escaped`] as an owned string.
pub fn escape(text: &str) -> String {
    Escaped::new(text).to_string()
}

/// Network bytes shown safely: valid UTF-8 as with [`escape`], every other byte as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let _ = write!(out, "{}", Escaped::new(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A file path shown safely (a shared or downloaded file's name may have come from a peer):
/// its bytes as with [`escape_bytes`].
pub fn escape_path(path: &std::path::Path) -> String {
    escape_bytes(path.as_os_str().as_encoded_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_not_obeyed() {
        assert_eq!(escape("\u{1b}]2;owned\u{7}"), "\\e]2;owned\\x07");
        assert_eq!(escape("\u{1b}[2J"), "\\e[2J");
        assert_eq!(escape("a\nhazel> b\r"), "a\\nhazel> b\\r");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("x\u{7f}\u{0}"), "x\\x7f\\x00");
    }

    #[test]
    fn text_that_reorders_or_hides_itself_is_escaped() {
        assert_eq!(escape("song\u{202e}3pm.exe"), "song\\u{202e}3pm.exe");
        assert_eq!(escape("a\u{200b}b\u{2066}"), "a\\u{200b}b\\u{2066}");
        assert_eq!(escape("\u{feff}x"), "\\u{feff}x");
    }

    #[test]
    fn ordinary_names_are_unchanged() {
        for name in [
            "Pink Floyd - Time.mp3",
            "Ñandú (1999) [live].ogg",
            "C:\\music\\a.mp3",
            "日本語のファイル.txt",
            "tab-less \"quoted\" name",
        ] {
            assert_eq!(escape(name), name);
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_hex() {
        assert_eq!(escape_bytes(b"caf\xe9 \x1b[1m"), "caf\\xe9 \\e[1m");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
    }

    #[test]
    fn a_cut_ends_with_an_ellipsis_and_counts_original_characters() {
        assert_eq!(Escaped::new("abcdef").max_chars(3).to_string(), "abc…");
        assert_eq!(Escaped::new("\n\n\n\n").max_chars(2).to_string(), "\\n\\n…");
        assert_eq!(Escaped::new("abc").max_chars(3).to_string(), "abc");
    }

    proptest::proptest! {
        /// Whatever a peer sends, the shown text holds no character a terminal acts on.
        #[test]
        fn no_unsafe_character_survives(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let shown = escape_bytes(&bytes);
            proptest::prop_assert!(!shown.chars().any(is_unsafe), "{shown:?}");
            let text = String::from_utf8_lossy(&bytes);
            proptest::prop_assert!(!escape(&text).chars().any(is_unsafe));
        }
    }
}
