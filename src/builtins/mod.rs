//! The builtins: one file each, all with the signature the shell asks for
//! (`fn run(&mut Shell, args) -> Outcome`, see `crate::shell::builtin`),
//! listed in [`BUILTINS`], which `main` hands to the shell. Their
//! documentation is `builtins/NAME.md` (see `crate::pages`).

mod cat;
mod cd;
mod curl;
mod cx;
mod debug;
mod echo;
mod env;
mod exit;
mod export;
mod forward;
mod help;
mod history;
mod img;
mod jobs;
mod kill;
mod literally;
mod logs;
mod ls;
mod ns;
mod plugin;
mod ps;
mod pwd;
mod runtimes;
mod scale;
mod set;
mod sleep;
mod source;
mod unset;
mod unwatch;
mod version;
mod watch;

pub use crate::shell::builtin::{Builtin, Failure, Outcome};

/// Every builtin kubesh runs, sorted by name.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "cat",
        run: cat::run,
    },
    Builtin {
        name: "cd",
        run: cd::run,
    },
    Builtin {
        name: "curl",
        run: curl::run,
    },
    Builtin {
        name: "cx",
        run: cx::run,
    },
    Builtin {
        name: "debug",
        run: debug::run,
    },
    Builtin {
        name: "echo",
        run: echo::run,
    },
    Builtin {
        name: "env",
        run: env::run,
    },
    Builtin {
        name: "exit",
        run: exit::run,
    },
    Builtin {
        name: "export",
        run: export::run,
    },
    Builtin {
        name: "forward",
        run: forward::run,
    },
    Builtin {
        name: "help",
        run: help::run,
    },
    Builtin {
        name: "history",
        run: history::run,
    },
    Builtin {
        name: "img",
        run: img::run,
    },
    Builtin {
        name: "jobs",
        run: jobs::run,
    },
    Builtin {
        name: "kill",
        run: kill::run,
    },
    Builtin {
        name: "literally",
        run: literally::run,
    },
    Builtin {
        name: "logs",
        run: logs::run,
    },
    Builtin {
        name: "ls",
        run: ls::run,
    },
    Builtin {
        name: "ns",
        run: ns::run,
    },
    Builtin {
        name: "plugin",
        run: plugin::run,
    },
    Builtin {
        name: "ps",
        run: ps::run,
    },
    Builtin {
        name: "pwd",
        run: pwd::run,
    },
    Builtin {
        name: "runtimes",
        run: runtimes::run,
    },
    Builtin {
        name: "scale",
        run: scale::run,
    },
    Builtin {
        name: "set",
        run: set::run,
    },
    Builtin {
        name: "sleep",
        run: sleep::run,
    },
    Builtin {
        name: "source",
        run: source::run,
    },
    Builtin {
        name: "unset",
        run: unset::run,
    },
    Builtin {
        name: "unwatch",
        run: unwatch::run,
    },
    Builtin {
        name: "version",
        run: version::run,
    },
    Builtin {
        name: "watch",
        run: watch::run,
    },
];

/// Every builtin name.
pub fn names<'a>() -> impl Iterator<Item = &'a str> {
    BUILTINS.iter().map(|b| b.name)
}

/// Fails with a usage message unless `args` has at most `max` entries.
pub fn at_most(args: &[String], max: usize, synopsis: &str) -> Result<(), Failure> {
    if args.len() > max {
        return Err(Failure::Usage(format!(
            "too many arguments; usage: {synopsis}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages;

    #[test]
    fn every_builtin_has_a_page_and_every_page_a_builtin() {
        let mut with_pages: Vec<&str> = pages::all().iter().map(|p| p.name).collect();
        with_pages.sort_unstable();
        let mut builtins: Vec<&str> = names().collect();
        builtins.sort_unstable();
        assert_eq!(builtins, with_pages);
    }

    #[test]
    fn builtins_are_sorted_and_unique() {
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
