//! The shell completions (`kubesh completions bash|zsh|fish|…`) and the
//! manual page (`kubesh man`), generated from the command line's own
//! definitions (clap_complete, clap_mangen) and the builtins' pages: after
//! `-c`, completion offers the builtins' names (each with its first
//! sentence where the shell shows one), and the manual has a BUILTINS
//! section with each one's synopsis. (Names of dprocs, which only the
//! cluster knows, are completed by kubesh's own prompt.)

use std::io::Write;

use clap::CommandFactory;
use clap::builder::{PossibleValue, PossibleValuesParser};

use crate::cli::Cli;
use crate::pages;

/// The command line as completion sees it: `-c` takes a builtin's name.
fn completion_command() -> clap::Command {
    let builtins: Vec<PossibleValue> = pages::all()
        .iter()
        .map(|page| PossibleValue::new(page.name).help(pages::summary(page.text)))
        .collect();
    Cli::command().mut_arg("command", |arg| {
        arg.value_parser(PossibleValuesParser::new(builtins))
    })
}

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let mut command = completion_command();
    clap_complete::generate(shell, &mut command, "kubesh", out);
    out.flush()
}

/// Writes the manual page (roff): `kubesh man | man -l -`.
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(Cli::command());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    render_builtins(out)?;
    man.render_version_section(out)?;
    out.flush()
}

/// The BUILTINS section: each builtin's synopsis and first sentence.
fn render_builtins(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, ".SH BUILTINS")?;
    writeln!(
        out,
        "{}",
        roff_text("Commands kubesh runs itself; `help NAME` prints the page of one.")
    )?;
    for page in pages::all() {
        writeln!(out, ".TP")?;
        writeln!(out, "\\fB{}\\fR", roff_escape(&page.synopsis))?;
        writeln!(out, "{}", roff_text(&pages::summary(page.text)))?;
    }
    Ok(())
}

/// Text for a roff line: escaped, and never read as a request.
fn roff_text(text: &str) -> String {
    let escaped = roff_escape(text);
    match escaped.starts_with(['.', '\'']) {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

fn roff_escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_text_is_never_a_request() {
        assert_eq!(roff_text(".hidden -x a\\b"), "\\&.hidden \\-x a\\eb");
    }
}
