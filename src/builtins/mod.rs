//! The builtins: one file each, all with the signature the shell asks for
//! (`fn run(&mut Shell, args, &mut Streams) -> Outcome`, see
//! `crate::shell::builtin`), writing only to the streams they are handed,
//! listed in [`BUILTINS`], which `main` hands to the shell. Their
//! documentation is `builtins/NAME.md` (see `crate::pages`).

mod cat;
mod cd;
mod clear;
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
mod kubectl;
mod literally;
mod logs;
mod ls;
mod ns;
mod pause;
mod plugin;
mod ps;
mod pwd;
mod read;
mod runtimes;
mod scale;
mod set;
mod sleep;
mod source;
mod tour;
mod unset;
mod unwatch;
mod version;
mod watch;

pub use crate::shell::builtin::{Builtin, Failure, Outcome, Streams};

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
        name: "clear",
        run: clear::run,
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
        name: "kubectl",
        run: kubectl::run,
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
        name: "pause",
        run: pause::run,
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
        name: "read",
        run: read::run,
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
        name: "tour",
        run: tour::run,
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
    use crate::cluster::ClusterTarget;
    use crate::interrupt::Interrupt;
    use crate::pages;
    use crate::runtimes::Runtimes;
    use crate::shell::Shell;

    /// Runs a builtin in-process: its outcome, stdout and stderr.
    fn run(shell: &mut Shell, words: &[&str]) -> (Result<i32, String>, String, String) {
        let builtin = BUILTINS
            .iter()
            .find(|b| b.name == words[0])
            .expect("a builtin");
        let args: Vec<String> = words[1..].iter().map(|w| w.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let outcome = (builtin.run)(
            shell,
            &args,
            &mut Streams {
                out: &mut out,
                err: &mut err,
            },
        );
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8");
        (
            outcome.map_err(|failure| failure.to_string()),
            text(out),
            text(err),
        )
    }

    fn shell() -> Shell {
        let runtimes = Runtimes::load(None).0;
        Shell::new(
            ClusterTarget::default(),
            runtimes,
            BUILTINS,
            Interrupt::default(),
        )
    }

    #[test]
    fn a_builtin_writes_to_the_streams_it_is_handed() {
        let mut shell = shell();
        assert_eq!(
            run(&mut shell, &["echo", "-n", "a", "b c"]),
            (Ok(0), "a b c".to_string(), String::new())
        );
        shell.vars.set("GREETING", "hello world".to_string());
        let (status, out, _) = run(&mut shell, &["set"]);
        assert_eq!(status, Ok(0));
        assert!(out.contains("GREETING='hello world'\n"), "{out}");
        let (status, out, err) = run(&mut shell, &["cat", "/no/such/file"]);
        assert_eq!((status, out.as_str()), (Ok(1), ""));
        assert_eq!(err, "kubesh: cat: /no/such/file: no such file\n");
    }

    #[test]
    fn a_failing_builtin_returns_its_failure_and_writes_nothing() {
        let mut shell = shell();
        let (status, out, err) = run(&mut shell, &["help", "nonesuch"]);
        assert_eq!(
            status,
            Err("nonesuch: no such builtin; `help` lists them".to_string())
        );
        assert_eq!((out.as_str(), err.as_str()), ("", ""));
    }

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
