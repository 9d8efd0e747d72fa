//! `echo [-n] [WORD…]`: print words separated by blanks.

use super::{Outcome, Streams};
use crate::shell::Shell;

pub fn run(_shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let (newline, words) = match args.first().map(String::as_str) {
        Some("-n") => (false, &args[1..]),
        _ => (true, args),
    };
    let out = &mut *streams.out;
    out.write_all(words.join(" ").as_bytes())?;
    if newline {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(0)
}
