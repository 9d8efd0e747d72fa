//! `echo [-n] [WORD…]`: print words separated by blanks.

use std::io::Write;

use super::Outcome;
use crate::shell::Shell;

pub fn run(_shell: &mut Shell, args: &[String]) -> Outcome {
    let (newline, words) = match args.first().map(String::as_str) {
        Some("-n") => (false, &args[1..]),
        _ => (true, args),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(words.join(" ").as_bytes())?;
    if newline {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(0)
}
