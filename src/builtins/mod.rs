//! The builtins: one file each, all with one signature
//! (`fn run(&mut Shell, args) -> Outcome`), listed in [`BUILTINS`]. Their
//! documentation is `builtins/NAME.md` (see [`crate::pages`]).

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

use std::fmt;

use crate::shell::{STATUS_USAGE, Shell};

/// What a builtin returns: its exit status, or a failure to report.
pub type Outcome = Result<i32, Failure>;

/// A builtin's failure: reported as `kubesh: NAME: message`.
#[derive(Debug)]
pub enum Failure {
    /// Wrong arguments (status 2).
    Usage(String),
    /// The builtin could not do its job (status 1).
    Failed(String),
    /// Output went to a closed pipe: stop quietly (status 141).
    BrokenPipe,
}

impl Failure {
    pub fn status(&self) -> i32 {
        match self {
            Failure::Usage(_) => STATUS_USAGE,
            Failure::Failed(_) => 1,
            Failure::BrokenPipe => crate::shell::STATUS_BROKEN_PIPE,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) | Failure::Failed(message) => f.write_str(message),
            Failure::BrokenPipe => f.write_str("output went to a closed pipe"),
        }
    }
}

impl From<std::io::Error> for Failure {
    /// Writing to stdout or stderr failed (e.g. a closed pipe).
    fn from(error: std::io::Error) -> Failure {
        match error.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::BrokenPipe,
            _ => Failure::Failed(format!("cannot write output: {error}")),
        }
    }
}

/// One builtin command.
pub struct Builtin {
    pub name: &'static str,
    pub run: fn(&mut Shell, &[String]) -> Outcome,
}

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

/// Cluster builtins that have a page but do not run yet: running one says
/// so instead of pretending.
pub const NOT_YET_AVAILABLE: &[&str] = &[];

/// The builtin called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Every builtin name, available or not.
pub fn names<'a>() -> impl Iterator<Item = &'a str> {
    BUILTINS
        .iter()
        .map(|b| b.name)
        .chain(NOT_YET_AVAILABLE.iter().copied())
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

    #[test]
    fn builtins_that_do_not_run_yet_are_cluster_builtins() {
        for name in NOT_YET_AVAILABLE {
            let page = pages::find(name).expect("page");
            assert_eq!(page.scope, pages::Scope::Cluster, "{name}");
        }
    }
}
