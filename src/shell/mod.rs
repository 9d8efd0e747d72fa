//! The shell itself: its state (variables, positional parameters, last
//! status, options) and the running of lines, scripts and commands: each
//! command goes to one of the builtins it was made with, or to a launch.

pub mod builtin;
mod dispatch;
pub mod jobs;
mod launching;
pub mod record;
mod script;
pub mod vars;

use std::path::PathBuf;

pub use dispatch::Invocation;

use crate::cluster::trace::RequestLog;
use crate::cluster::{ClusterError, ClusterTarget, Connection};
use crate::interrupt::Interrupt;
use crate::printer::Printer;
use crate::runtimes::Runtimes;
use crate::status::STATUS_USAGE;
use crate::syntax::{self, Command, Lookup, quote};
use builtin::Builtin;
use record::{Guide, Ran, Record};
use vars::Variables;

/// Everything the shell remembers between commands.
pub struct Shell {
    pub vars: Variables,
    /// `$0`: the script's name, or `kubesh`.
    pub name: String,
    /// `$1…`.
    pub positional: Vec<String>,
    /// `$?`.
    pub last_status: i32,
    /// `set -e` (default): a failing command stops a script.
    pub errexit: bool,
    /// `set -x`: print each command before running it.
    pub xtrace: bool,
    /// `debug`: print what the shell does and how long it takes.
    pub debug: bool,
    /// Set by `exit`: stop reading commands and exit with this status.
    pub exit_requested: Option<i32>,
    /// The words of the last command run, for messages about it.
    pub last_command: Vec<String>,
    /// Lines entered interactively, oldest first (`history`).
    pub history: Vec<String>,
    /// ConfigMaps and Secrets exported to launched programs by reference.
    pub env_from: Vec<crate::launch::objects::EnvSource>,
    /// Background dprocs launched by this session, which can be watched.
    pub watchable:
        std::collections::BTreeMap<String, (crate::launch::objects::Spec, crate::reload::Digests)>,
    /// The dprocs being hot-reloaded.
    pub reloads: crate::reload::Reloads,
    /// Where messages from background work (reload lines) are printed.
    pub printer: Printer,
    /// The dprocs launched by this session, for clean-up at exit.
    pub launched: Vec<crate::cluster::dprocs::Launched>,
    /// Background jobs (port forwards).
    pub jobs: jobs::Jobs,
    /// Names and ids of dprocs this shell has seen, for completion.
    pub known_dprocs: Vec<String>,
    /// The directory before the last `cd` (`cd -`).
    pub previous_dir: Option<PathBuf>,
    /// Which cluster, context, namespace and environment commands go to.
    pub target: ClusterTarget,
    pub runtimes: Runtimes,
    /// The builtins this shell runs, sorted by name.
    pub builtins: &'static [Builtin],
    pub interrupt: Interrupt,
    /// The script itself comes from stdin (`… | kubesh`): then neither
    /// foreground programs nor `cat` read stdin, which is the script's.
    pub stdin_is_script: bool,
    /// `--dry-run`: launches print their objects instead of creating them.
    pub dry_run: bool,
    /// Commands come from a person at the prompt (not a script or `-c`).
    pub interactive: bool,
    /// The API requests made, shown while `debug` is on.
    pub requests: RequestLog,
    /// The API server connection, opened on first use.
    connection: Option<Connection>,
    /// What ran in this session and how it ended.
    pub record: Record,
    /// What follows the lines typed at the prompt (the tour), if anything.
    pub guide: Option<Box<dyn Guide>>,
    /// How deep `source` calls are nested.
    source_depth: usize,
}

impl Shell {
    pub fn new(
        target: ClusterTarget,
        runtimes: Runtimes,
        builtins: &'static [Builtin],
        interrupt: Interrupt,
    ) -> Shell {
        Shell {
            vars: Variables::default(),
            name: "kubesh".to_string(),
            positional: Vec::new(),
            last_status: 0,
            errexit: true,
            xtrace: false,
            debug: false,
            exit_requested: None,
            last_command: Vec::new(),
            history: Vec::new(),
            env_from: Vec::new(),
            watchable: std::collections::BTreeMap::new(),
            reloads: crate::reload::Reloads::default(),
            printer: crate::printer::stderr(),
            launched: Vec::new(),
            jobs: jobs::Jobs::default(),
            known_dprocs: Vec::new(),
            previous_dir: None,
            target,
            runtimes,
            builtins,
            interrupt,
            stdin_is_script: false,
            interactive: false,
            dry_run: false,
            requests: RequestLog::default(),
            connection: None,
            record: Record::default(),
            guide: None,
            source_depth: 0,
        }
    }

    /// Runs one command after parsing: expands it and dispatches it to a
    /// builtin, a launch or kubectl. Returns its exit status.
    pub fn execute(&mut self, command: &Command) -> i32 {
        let args = syntax::expand_words(&command.words, self);
        if args.is_empty() {
            if command.background {
                report!("kubesh: `&` needs a program to run in the background");
                return STATUS_USAGE;
            }
            // Left to right: `A=1 B=$A` sees the new A, as in other shells.
            for assignment in &command.assignments {
                let value = syntax::expand_word(&assignment.value, self);
                if self.xtrace {
                    report!(
                        "{}{}={}",
                        self.target.prompt(),
                        assignment.name,
                        quote(&value)
                    );
                }
                self.vars.set(&assignment.name, value);
            }
            return 0;
        }
        let prefixes: Vec<(String, String)> = command
            .assignments
            .iter()
            .map(|a| (a.name.clone(), syntax::expand_word(&a.value, self)))
            .collect();
        if self.xtrace {
            let shown: Vec<String> = prefixes
                .iter()
                .map(|(n, v)| format!("{n}={}", quote(v)))
                .chain(args.iter().map(|a| quote(a)))
                .collect();
            // As the command would be typed at the prompt: a recorded
            // script reads as a session.
            report!("{}{}", self.target.prompt(), shown.join(" "));
        }
        self.last_command = args.clone();
        let started = std::time::Instant::now();
        let launched_before = self.launched.len();
        let status = dispatch::dispatch(
            self,
            Invocation {
                args: args.clone(),
                prefixes,
                background: command.background,
            },
        );
        self.record.push(Ran {
            args,
            background: command.background,
            status,
            launched: self.launched.get(launched_before).map(|l| l.name.clone()),
        });
        if self.debug {
            report!(
                "debug: status {status} after {:.1} ms",
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        status
    }
}

/// Why a dproc cannot be hot-reloaded.
#[derive(Debug, thiserror::Error)]
pub enum NotWatched {
    #[error("{0}: only background dprocs launched in this session can be watched")]
    NotLaunchedHere(String),
    #[error(
        "{0}: ships no files (its program is on its command line, or in its image): nothing to watch"
    )]
    NoFiles(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Files(#[from] crate::launch::saves::WatchError),
}

impl Shell {
    /// Starts hot-reloading a background dproc this session launched.
    pub fn watch(&mut self, name: &str) -> Result<(), NotWatched> {
        let (spec, digests) = self
            .watchable
            .get(name)
            .cloned()
            .ok_or_else(|| NotWatched::NotLaunchedHere(name.to_string()))?;
        if spec.program.files.is_none() {
            return Err(NotWatched::NoFiles(name.to_string()));
        }
        let printer = self.printer.clone();
        let connection = self.connect()?;
        let (client, handle) = (connection.client.clone(), connection.handle());
        Ok(self.reloads.watch(spec, digests, client, handle, printer)?)
    }

    /// Reads the cluster env again (after launches, kills and environment
    /// changes); keeps the old values when the cluster cannot be asked.
    pub fn refresh_cluster_env(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.read_cluster_env(&connection);
            self.connection = Some(connection);
        }
    }

    /// Reads the cluster env over `connection` into the variables.
    fn read_cluster_env(&mut self, connection: &Connection) {
        let environment = self.target.environment_label();
        match crate::cluster::cluster_env::read(connection, &self.target.namespace, &environment) {
            Ok(variables) => self.vars.set_cluster(variables),
            Err(error) => {
                if self.debug {
                    report!("debug: the cluster env was not read: {error}");
                }
            }
        }
    }

    /// Aims the shell at another context; the next cluster command connects
    /// to it.
    pub fn set_target(&mut self, target: ClusterTarget) {
        // The jobs run on the connection, which goes.
        for (number, description) in self.jobs.end_all("the shell switched to another context") {
            report!(
                "kubesh: job %{number} ({description}) ended: the shell switched to another context; start it again if you still need it"
            );
        }
        self.target = target;
        self.connection = None;
        self.vars.set_cluster(Vec::new());
    }

    /// The connection to the cluster, opened now if it is not yet (and
    /// then the cluster env read).
    pub fn connect(&mut self) -> Result<&Connection, ClusterError> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => {
                let connection = Connection::open(&self.target, &self.requests)?;
                self.read_cluster_env(&connection);
                connection
            }
        };
        Ok(self.connection.insert(connection))
    }
}

impl Shell {
    /// Clean-up at exit, as `--gc` or `KUBESH_GC` says: `none` (default),
    /// `pods` (this session's foreground pods) or `all` (everything this
    /// session launched).
    pub fn clean_up(&mut self, flag: Option<&str>) {
        let policy = flag
            .map(str::to_string)
            .or_else(|| self.vars.get("KUBESH_GC"));
        let keep_background = match policy.as_deref() {
            None | Some("none" | "") => return,
            Some("pods") => true,
            Some("all") => false,
            Some(other) => {
                report!("kubesh: KUBESH_GC={other:?} is not none, pods or all; nothing cleaned up");
                return;
            }
        };
        let launched = std::mem::take(&mut self.launched);
        let targets: Vec<_> = launched
            .iter()
            .filter(|l| !(keep_background && l.background))
            .collect();
        if targets.is_empty() {
            return;
        }
        let namespace_of = |l: &crate::cluster::dprocs::Launched| l.namespace.clone();
        let connection = match self.connect() {
            Ok(connection) => connection,
            Err(error) => {
                report!("kubesh: clean-up: {error}");
                return;
            }
        };
        for target in targets {
            if let Err(error) =
                crate::cluster::dprocs::delete_launched(connection, &namespace_of(target), target)
            {
                report!("kubesh: clean-up: {}: {error}", target.name);
            }
        }
    }
}

impl Lookup for Shell {
    fn variable(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.last_status.to_string()),
            "#" => Some(self.positional.len().to_string()),
            "@" => Some(self.positional.join(" ")),
            "$" => Some(std::process::id().to_string()),
            "0" => Some(self.name.clone()),
            "PWD" => std::env::current_dir()
                .ok()
                .map(|dir| dir.display().to_string()),
            "OLDPWD" => self
                .previous_dir
                .as_ref()
                .map(|dir| dir.display().to_string()),
            _ if name.bytes().all(|b| b.is_ascii_digit()) => {
                let index: usize = name.parse().ok()?;
                self.positional.get(index.checked_sub(1)?).cloned()
            }
            _ => self.vars.get(name),
        }
    }

    fn positional(&self) -> Vec<String> {
        self.positional.clone()
    }

    fn home(&self) -> Option<String> {
        self.vars.get("HOME")
    }
}
