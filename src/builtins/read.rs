//! `read [-p PROMPT] NAME…`: a line from standard input into variables.

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;
use crate::shell::vars::is_valid_name;
use crate::status::STATUS_INTERRUPTED;
use crate::terminal::{self, NoLine};

const USAGE: &str = "usage: read [-p PROMPT] NAME…";

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let (prompt, names) = match args {
        [flag, prompt, names @ ..] if flag == "-p" => (Some(prompt.as_str()), names),
        [flag] if flag == "-p" => {
            return Err(Failure::Usage(format!("-p needs a prompt; {USAGE}")));
        }
        names => (None, names),
    };
    if names.is_empty() {
        return Err(Failure::Usage(USAGE.to_string()));
    }
    if let Some(name) = names.iter().find(|name| !is_valid_name(name)) {
        return Err(Failure::Usage(format!("{name:?} is not a variable name")));
    }
    if shell.stdin_is_script {
        return Err(Failure::Failed(
            "standard input is the script kubesh is running, not data; \
             run the script as `kubesh FILE` and pipe the data in"
                .to_string(),
        ));
    }
    if let Some(prompt) = prompt {
        streams.err.write_all(prompt.as_bytes())?;
        streams.err.flush()?;
    }
    let interrupt = shell.interrupt.clone();
    let line = match terminal::read_line(|| interrupt.is_set()) {
        Ok(line) => String::from_utf8_lossy(&line).into_owned(),
        // As in other shells: status 1 at the end of input, names emptied.
        Err(NoLine::End) => {
            for name in names {
                shell.vars.set(name, String::new());
            }
            return Ok(1);
        }
        Err(NoLine::Stopped) => return Ok(STATUS_INTERRUPTED),
        Err(NoLine::Io(error)) => return Err(Failure::Failed(error.to_string())),
    };
    for (name, value) in names.iter().zip(split_fields(&line, names.len())) {
        shell.vars.set(name, value);
    }
    Ok(0)
}

/// `count` fields of `line` split at blanks, the last one taking the rest
/// (missing ones empty), as `read A B` does in other shells.
fn split_fields(line: &str, count: usize) -> Vec<String> {
    let mut fields = Vec::new();
    let mut rest = line.trim_start();
    for _ in 1..count {
        let (field, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        fields.push(field.to_string());
        rest = after.trim_start();
    }
    fields.push(rest.trim_end().to_string());
    fields
}

#[cfg(test)]
mod tests {
    use super::split_fields;

    #[test]
    fn the_last_name_takes_the_rest_of_the_line() {
        assert_eq!(split_fields("  Ada Lovelace  ", 1), ["Ada Lovelace"]);
        assert_eq!(split_fields("a b c d", 2), ["a", "b c d"]);
        assert_eq!(split_fields("a", 3), ["a", "", ""]);
    }
}
