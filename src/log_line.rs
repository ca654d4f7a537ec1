//! One event, one log line: control characters are escaped on the way out.
//!
//! A server's error text, a database name or a file name can hold a newline
//! or a terminal escape; logged as they are, they forge a line ("level=ERROR
//! …") or rewrite the operator's terminal. tracing-subscriber hands each
//! formatted event to its writer in one `write_all`, so escaping here covers
//! every field of every event, whoever logs it. Kept: tab and the event's
//! own final newline. Escapes are JSON's (`\n`, `\r`, `\u001b`), so the JSON
//! format stays valid JSON.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Standard error, one line per event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = OneLine<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLine(io::stderr())
    }
}

/// A writer that escapes control characters, except tab and a final newline.
#[derive(Debug)]
pub struct OneLine<W>(pub W);

/// `text` with control characters escaped (a final newline kept).
pub fn escape(text: &str) -> String {
    let (body, end) = match text.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (text, ""),
    };
    let mut out = String::with_capacity(text.len());
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            // Line and paragraph separators end a line in some viewers.
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str(end);
    out
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(escape(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_line() {
        assert_eq!(escape("a\nlevel=ERROR forged\n"), "a\\nlevel=ERROR forged\n");
        assert_eq!(escape("x\r\u{1b}[31m\u{9b}y\tz"), "x\\r\\u001b[31m\\u009by\tz");
        assert_eq!(escape("plain"), "plain");
        let mut out = OneLine(Vec::new());
        out.write_all("ünï\u{2028}\n".as_bytes()).unwrap();
        assert_eq!(String::from_utf8(out.0).unwrap(), "ünï\\u2028\n");
    }
}
