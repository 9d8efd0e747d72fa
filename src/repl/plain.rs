//! Reading lines at a terminal that cannot redraw (`TERM=dumb`): no escape
//! sequence is ever written. kubesh shows what is typed itself (the
//! terminal's own echo is off while the prompt waits), so that lines
//! pasted several at a time are each shown after their own prompt, when
//! they run, and not all at once above the first one's output. Backspace,
//! Ctrl-C (drops the line and whatever was pasted after it) and Ctrl-D
//! (on an empty line) work as at a plain terminal.

use std::io::Write;

/// What a prompt got.
pub enum Got {
    Line(Vec<u8>),
    Interrupted,
    Eof,
}

/// Lines typed or pasted at a terminal that cannot redraw.
#[derive(Default)]
pub struct PlainReader {
    /// Bytes read after the last line given out: lines pasted with it,
    /// not yet shown.
    pending: Vec<u8>,
}

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;

impl PlainReader {
    /// Forgets lines pasted but not yet run (after Ctrl-C); returns how
    /// many there were.
    pub fn discard(&mut self) -> usize {
        let lines = self
            .pending
            .split(|b| *b == b'\n' || *b == b'\r')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .count();
        self.pending.clear();
        lines
    }

    /// Writes `prompt` and reads one line, showing it as it comes.
    pub fn read_line(&mut self, prompt: &str) -> std::io::Result<Got> {
        // Quiet before the prompt shows: a paste that comes the moment it
        // shows is not echoed by the terminal all at once.
        let _quiet = Quiet::start()?;
        let mut out = std::io::stdout();
        out.write_all(prompt.as_bytes())?;
        let mut line = Vec::new();
        // Bytes pasted earlier are shown now, after their prompt.
        let earlier = std::mem::take(&mut self.pending);
        if let Some(got) = self.take(&earlier, &mut line, &mut out)? {
            return Ok(got);
        }
        out.flush()?;
        let mut buffer = [0u8; 4096];
        loop {
            let read = match read_stdin(&mut buffer) {
                Ok(0) if line.is_empty() => return Ok(Got::Eof),
                Ok(0) => {
                    out.write_all(b"\n")?;
                    return Ok(Got::Line(line));
                }
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if let Some(got) = self.take(&buffer[..read], &mut line, &mut out)? {
                return Ok(got);
            }
            out.flush()?;
        }
    }

    /// Adds `bytes` to `line`, showing them; what comes after the line's
    /// end is kept for the next prompts.
    fn take(
        &mut self,
        bytes: &[u8],
        line: &mut Vec<u8>,
        out: &mut impl Write,
    ) -> std::io::Result<Option<Got>> {
        for (at, &byte) in bytes.iter().enumerate() {
            match byte {
                b'\n' | b'\r' => {
                    let rest = &bytes[at + 1..];
                    // A "\r\n" ends one line, not two.
                    let rest = match (byte, rest.first()) {
                        (b'\r', Some(b'\n')) => &rest[1..],
                        _ => rest,
                    };
                    self.pending.extend_from_slice(rest);
                    out.write_all(b"\n")?;
                    out.flush()?;
                    return Ok(Some(Got::Line(std::mem::take(line))));
                }
                CTRL_C => {
                    out.write_all(b"^C\n")?;
                    out.flush()?;
                    self.pending.clear();
                    line.clear();
                    return Ok(Some(Got::Interrupted));
                }
                CTRL_D if line.is_empty() => {
                    out.write_all(b"\n")?;
                    out.flush()?;
                    return Ok(Some(Got::Eof));
                }
                BACKSPACE | DELETE => {
                    // The last character, all its UTF-8 bytes.
                    while let Some(last) = line.pop() {
                        if last & 0xc0 != 0x80 {
                            out.write_all(b"\x08 \x08")?;
                            break;
                        }
                    }
                }
                byte if byte < b' ' && byte != b'\t' => {}
                byte => {
                    line.push(byte);
                    out.write_all(&[byte])?;
                }
            }
        }
        Ok(None)
    }
}

/// Reads what stdin has (unbuffered: bytes not taken here stay for the
/// programs that read stdin).
fn read_stdin(buffer: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: reads into a buffer of the length given.
    let read = unsafe { libc::read(libc::STDIN_FILENO, buffer.as_mut_ptr().cast(), buffer.len()) };
    usize::try_from(read).map_err(|_| std::io::Error::last_os_error())
}

/// The terminal's echo and line editing off (and Ctrl-C read as a byte)
/// while a prompt waits; the settings before are put back when dropped.
pub(super) struct Quiet {
    before: libc::termios,
}

impl Quiet {
    pub(super) fn start() -> std::io::Result<Quiet> {
        // SAFETY: an all-zero termios is a valid value for tcgetattr to fill.
        let mut before: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills the termios passed, which lives for the call.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut before) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut quiet = before;
        quiet.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
        quiet.c_cc[libc::VMIN] = 1;
        quiet.c_cc[libc::VTIME] = 0;
        // SAFETY: sets the settings from a termios that lives for the call.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &quiet) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Quiet { before })
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        // SAFETY: puts back the settings read in `start`.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &self.before) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(reader: &mut PlainReader, bytes: &[u8]) -> (Option<Got>, Vec<u8>, Vec<u8>) {
        let mut line = Vec::new();
        let mut out = Vec::new();
        let got = reader.take(bytes, &mut line, &mut out).unwrap();
        (got, line, out)
    }

    #[test]
    fn a_pasted_block_gives_its_first_line_and_keeps_the_rest_unshown() {
        let mut reader = PlainReader::default();
        let (got, _, out) = feed(&mut reader, b"echo a\recho b\recho c\r");
        assert!(matches!(got, Some(Got::Line(line)) if line == b"echo a"));
        assert_eq!(out, b"echo a\n");
        assert_eq!(reader.pending, b"echo b\recho c\r");
        assert_eq!(reader.discard(), 2);
    }

    #[test]
    fn backspace_removes_a_whole_character_and_ctrl_c_drops_everything() {
        let mut reader = PlainReader::default();
        let (got, line, out) = feed(&mut reader, "caté\x7f".as_bytes());
        assert!(got.is_none());
        assert_eq!(line, b"cat");
        assert_eq!(out, "caté\x08 \x08".as_bytes());
        reader.pending = b"more\n".to_vec();
        let (got, _, _) = feed(&mut reader, b"x\x03");
        assert!(matches!(got, Some(Got::Interrupted)));
        assert!(reader.pending.is_empty());
    }
}
