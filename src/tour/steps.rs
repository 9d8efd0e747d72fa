//! The tour's eight steps: what each says, what to type, and how it is
//! judged from the shell's record of what ran (a pure function of the
//! commands of one line and the reloads seen, so each is tested here).

use crate::shell::record::Ran;

/// What the record does not hold: the reloads of `web` since the step
/// began.
#[derive(Debug, Default, Clone, Copy)]
pub struct Facts {
    pub web_reloads: u64,
}

/// How a command stands to a step.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The step happened; what was seen.
    Done(String),
    /// A try at the step, or something else, that did not do it; a hint.
    Wrong(String),
    /// Looking around (`ls`, `cat web.py`, `echo $WEB_URL`): no judgement.
    Neutral,
}

pub struct Step {
    pub title: &'static str,
    /// Why the step matters, in lines of at most 60 columns.
    pub why: &'static str,
    /// What to type (and do), one line each.
    pub type_this: &'static [&'static str],
    check: fn(&Facts, &Ran) -> Verdict,
}

impl Step {
    pub fn judge(&self, facts: &Facts, ran: &Ran) -> Verdict {
        (self.check)(facts, ran)
    }
}

/// The step that starts `web`, also asked for again when a resumed tour
/// needs web launched from this shell.
pub const WEB: usize = 1;

/// The step that hot-reloads `web`.
pub const RELOAD: usize = 6;

pub const STEPS: &[Step] = &[
    Step {
        title: "a program in the cluster",
        why: "\
Without `&`, a program runs in the foreground, in a pod of
its own: its output streams back here and its exit status
becomes $?. No image to build, no YAML: kubesh ships
hello.py and runs it with a Python image.",
        type_this: &["python hello.py"],
        check: hello,
    },
    Step {
        title: "a service in the background",
        why: "\
A trailing `&` makes a long-running program: a Deployment
behind a Service named after the file, web. kubesh waits
until it listens on $PORT, then gives you the prompt back.",
        type_this: &["python web.py &"],
        check: web,
    },
    Step {
        title: "what runs",
        why: "\
`ps` lists the programs kubesh launched here, with their
pods and how they are doing.",
        type_this: &["ps"],
        check: ps,
    },
    Step {
        title: "talk to the service",
        why: "\
kubesh's `curl` goes through the API server's service
proxy: no port to open, no pod to jump through.",
        type_this: &["curl web"],
        check: curl,
    },
    Step {
        title: "its logs",
        why: "\
What web printed, a line for each request, is in its logs,
as `kubectl logs` would show them.",
        type_this: &["logs web"],
        check: logs,
    },
    Step {
        title: "two programs that find each other",
        why: "\
Each background program's address is in the cluster env:
`echo $WEB_URL` shows it, and every program launched after
web is handed it. client.py calls web by WEB_URL; no
manifest wires them.",
        type_this: &["python client.py"],
        check: client,
    },
    Step {
        title: "change the code while it runs",
        why: "\
`watch web` hot-reloads web: on each save, kubesh puts the
changed file into the running pod and restarts the program
there, in well under a second; a line starting with ↻ says
so. Edit web.py in any editor (another terminal, the
sandbox's editor): change the GREETING line and save.",
        type_this: &[
            "watch web",
            "(change GREETING in web.py and save it)",
            "curl web",
        ],
        check: reload,
    },
    Step {
        title: "clean up",
        why: "\
`kill` removes everything kubesh made for web: its
Deployment, its Service, the ConfigMaps of its code;
nothing kubesh did not make.",
        type_this: &["kill web"],
        check: kill,
    },
];

/// Builtins that look around or change the shell's settings: used
/// without an error, they are no wrong try at any step.
const LOOKING_AROUND: &[&str] = &[
    "cat", "cd", "clear", "curl", "cx", "debug", "echo", "env", "export", "help", "history",
    "jobs", "logs", "ls", "ns", "ps", "pwd", "runtimes", "set", "sleep", "unset", "unwatch",
    "version", "watch",
];

fn neutral(ran: &Ran) -> bool {
    match ran.args.first().map(String::as_str) {
        Some("tour") => true,
        Some(name) => LOOKING_AROUND.contains(&name) && ran.status == 0,
        None => true,
    }
}

/// Whether `ran` runs `file` (not `cat file`): as a program's argument.
fn runs(ran: &Ran, file: &str) -> bool {
    let is_builtin = ran
        .args
        .first()
        .is_some_and(|name| name == "tour" || LOOKING_AROUND.contains(&name.as_str()));
    !is_builtin
        && ran
            .args
            .iter()
            .any(|arg| arg == file || arg.ends_with(&format!("/{file}")))
}

/// The service a `curl` command asks: `web` of `curl -i http://web:80/x`.
fn curled(ran: &Ran) -> Option<&str> {
    if ran.args.first().map(String::as_str) != Some("curl") {
        return None;
    }
    let mut words = ran.args[1..].iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-X" | "-H" | "-d" => {
                words.next();
            }
            option if option.starts_with('-') => {}
            url => {
                let host = url.strip_prefix("http://").unwrap_or(url);
                return host.split(['.', ':', '/']).next();
            }
        }
    }
    None
}

fn not_this_step(ran: &Ran, wanted: &str) -> Verdict {
    Verdict::Wrong(format!(
        "`{}` is not this step. Type `{wanted}`.",
        ran.args.join(" ")
    ))
}

/// A foreground program of the tour's directory that must end with 0.
fn foreground(ran: &Ran, file: &str, done: &str, failed: &str) -> Verdict {
    let wanted = format!("python {file}");
    if !runs(ran, file) {
        return if neutral(ran) {
            Verdict::Neutral
        } else {
            not_this_step(ran, &wanted)
        };
    }
    if ran.background {
        let name = file.trim_end_matches(".py");
        return Verdict::Wrong(format!(
            "With `&`, {file} runs in the background, as a service that must keep \
             running; this step runs it in the foreground, without `&`: type `{wanted}` \
             (and `kill {name}` to remove the background one)."
        ));
    }
    match (ran.status, &ran.launched) {
        (0, Some(_)) => Verdict::Done(done.to_string()),
        (_, None) => Verdict::Wrong(format!(
            "{file} did not start: kubesh said why above. Type `{wanted}` in the tour's \
             directory, where {file} is (`cd` back there if you left it)."
        )),
        (130, Some(_)) => Verdict::Wrong(format!(
            "{file} was stopped with Ctrl-C before it ended. Type `{wanted}` and let it end."
        )),
        (status, Some(_)) => Verdict::Wrong(format!(
            "{file} ended with status {status}, not 0: {failed} Type `{wanted}` again."
        )),
    }
}

fn hello(_: &Facts, ran: &Ran) -> Verdict {
    foreground(
        ran,
        "hello.py",
        "hello.py ran in a pod, its output came back, and it ended with status 0 ($?).",
        "its output above says why.",
    )
}

fn web(_: &Facts, ran: &Ran) -> Verdict {
    let wanted = "python web.py &";
    if !runs(ran, "web.py") {
        return match ran.args.first().map(String::as_str) {
            // Making way for a web still running from earlier.
            Some("kill") if ran.status == 0 => Verdict::Neutral,
            _ if neutral(ran) => Verdict::Neutral,
            _ => not_this_step(ran, wanted),
        };
    }
    if !ran.background {
        return Verdict::Wrong(
            "Without `&`, web.py runs in the foreground and holds the prompt until it ends, \
             which a service never does. Type `python web.py &`, with the `&`."
                .to_string(),
        );
    }
    match (ran.status, ran.launched.as_deref()) {
        (0, Some("web")) => Verdict::Done(
            "web is ready: a Deployment and a Service called web, made from web.py.".to_string(),
        ),
        (0, Some(other)) => Verdict::Wrong(format!(
            "That service is called {other}; the tour's steps talk to web. Type `kill {other}`, \
             then `python web.py &` (without SERVICE_NAME)."
        )),
        _ => Verdict::Wrong(
            "web did not become ready; kubesh said why above. If it says web is already \
             running, type `kill web` first; then `python web.py &` again."
                .to_string(),
        ),
    }
}

/// A builtin about web that must succeed.
fn about_web(ran: &Ran, builtin: &str, wanted: &str, done: &str) -> Verdict {
    let name = ran.args.first().map(String::as_str);
    let names_web = ran.args[1..].iter().any(|a| a == "web");
    if name != Some(builtin) || !(names_web || builtin == "ps") {
        return if neutral(ran) {
            Verdict::Neutral
        } else {
            not_this_step(ran, wanted)
        };
    }
    if ran.status == 0 {
        Verdict::Done(done.to_string())
    } else {
        Verdict::Wrong(format!(
            "`{}` failed; kubesh said why above. Is web still running? Step 2 starts it: \
             `python web.py &`. Then type `{wanted}`.",
            ran.args.join(" ")
        ))
    }
}

fn ps(_: &Facts, ran: &Ran) -> Verdict {
    about_web(
        ran,
        "ps",
        "ps",
        "ps listed web; its pod runs the code kubesh shipped.",
    )
}

fn curl(_: &Facts, ran: &Ran) -> Verdict {
    match curled(ran) {
        Some("web") if ran.status == 0 => {
            Verdict::Done("web answered, through the API server's service proxy.".to_string())
        }
        Some("web") => Verdict::Wrong(
            "web did not answer; kubesh said why above. Is it running (`ps`)? Then type \
             `curl web` again."
                .to_string(),
        ),
        Some(other) if ran.status != 0 => Verdict::Wrong(format!(
            "`curl {other}` got no answer. The tour's service is web: type `curl web`."
        )),
        _ if neutral(ran) => Verdict::Neutral,
        _ => not_this_step(ran, "curl web"),
    }
}

fn logs(_: &Facts, ran: &Ran) -> Verdict {
    about_web(
        ran,
        "logs",
        "logs web",
        "those are web's logs: its start, and a line for your curl.",
    )
}

fn client(_: &Facts, ran: &Ran) -> Verdict {
    foreground(
        ran,
        "client.py",
        "client.py found web by WEB_URL, from the cluster env, and web answered it.",
        "it could not call web by WEB_URL. Is web running (`ps`)? `echo $WEB_URL` shows \
         the address it was handed.",
    )
}

fn reload(facts: &Facts, ran: &Ran) -> Verdict {
    match curled(ran) {
        Some("web") if facts.web_reloads == 0 => Verdict::Wrong(
            "No reload of web was seen yet. Type `watch web`, then change the GREETING line \
             of web.py and save it: a line starting with ↻ shows the reload. Then `curl web`."
                .to_string(),
        ),
        Some("web") if ran.status == 0 => Verdict::Done(
            "web answered with the code you saved, reloaded inside its running pod.".to_string(),
        ),
        Some("web") => Verdict::Wrong(
            "web did not answer after the reload; kubesh said why above. A mistake in \
             web.py? Fix it and save again: the next save reloads it. Then `curl web`."
                .to_string(),
        ),
        _ if neutral(ran) => Verdict::Neutral,
        _ => not_this_step(ran, "watch web"),
    }
}

fn kill(_: &Facts, ran: &Ran) -> Verdict {
    about_web(
        ran,
        "kill",
        "kill web",
        "web is gone, with everything kubesh made for it.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(line: &str, background: bool, status: i32, launched: Option<&str>) -> Ran {
        Ran {
            args: line.split(' ').map(str::to_string).collect(),
            background,
            status,
            launched: launched.map(str::to_string),
        }
    }

    fn judge(step: usize, ran: &Ran) -> Verdict {
        STEPS[step].judge(&Facts::default(), ran)
    }

    fn is_done(verdict: &Verdict) -> bool {
        matches!(verdict, Verdict::Done(_))
    }

    fn hint(verdict: Verdict) -> String {
        match verdict {
            Verdict::Wrong(hint) => hint,
            other => panic!("a hint, not {other:?}"),
        }
    }

    #[test]
    fn there_are_eight_steps_and_their_texts_fit_sixty_columns() {
        assert_eq!(STEPS.len(), 8);
        for step in STEPS {
            for line in step.why.lines().chain(step.type_this.iter().copied()) {
                assert!(line.chars().count() <= 60, "{line:?}");
            }
        }
    }

    #[test]
    fn the_first_step_is_a_foreground_run_of_hello_that_ends_with_0() {
        let done = judge(0, &ran("python hello.py", false, 0, Some("hello-1a2b3c")));
        assert!(is_done(&done), "{done:?}");
        assert!(is_done(&judge(
            0,
            &ran("python3 ./hello.py", false, 0, Some("hello-1a2b3c"))
        )));
        let failed = hint(judge(0, &ran("python hello.py", false, 1, Some("hello-1"))));
        assert!(failed.contains("status 1"), "{failed}");
        let background = hint(judge(0, &ran("python hello.py", true, 1, Some("hello"))));
        assert!(background.contains("without `&`"), "{background}");
        let typo = hint(judge(0, &ran("python helo.py", false, 1, None)));
        assert!(typo.contains("Type `python hello.py`"), "{typo}");
        assert_eq!(
            judge(0, &ran("cat hello.py", false, 0, None)),
            Verdict::Neutral
        );
        assert_eq!(judge(0, &ran("ls", false, 0, None)), Verdict::Neutral);
    }

    #[test]
    fn the_service_must_be_web_in_the_background() {
        assert!(is_done(&judge(
            1,
            &ran("python web.py", true, 0, Some("web"))
        )));
        let foreground = hint(judge(1, &ran("python web.py", false, 130, Some("web-1"))));
        assert!(foreground.contains("with the `&`"), "{foreground}");
        let renamed = hint(judge(1, &ran("python web.py", true, 0, Some("site"))));
        assert!(renamed.contains("kill site"), "{renamed}");
        assert_eq!(judge(1, &ran("kill web", false, 0, None)), Verdict::Neutral);
    }

    #[test]
    fn curl_is_judged_by_the_service_it_asks() {
        assert!(is_done(&judge(3, &ran("curl web", false, 0, None))));
        assert!(is_done(&judge(
            3,
            &ran("curl -i http://web:8080/", false, 0, None)
        )));
        let wrong = hint(judge(3, &ran("curl wbe", false, 1, None)));
        assert!(wrong.contains("`curl wbe` got no answer"), "{wrong}");
        assert_eq!(judge(3, &ran("ps", false, 0, None)), Verdict::Neutral);
    }

    #[test]
    fn the_reload_step_needs_a_reload_before_the_curl() {
        let curl = ran("curl web", false, 0, None);
        let before = hint(STEPS[RELOAD].judge(&Facts { web_reloads: 0 }, &curl));
        assert!(before.contains("No reload of web"), "{before}");
        assert!(is_done(
            &STEPS[RELOAD].judge(&Facts { web_reloads: 1 }, &curl)
        ));
        assert_eq!(
            STEPS[RELOAD].judge(&Facts::default(), &ran("watch web", false, 0, None)),
            Verdict::Neutral
        );
    }

    #[test]
    fn a_failed_builtin_or_an_unknown_command_is_a_wrong_try() {
        let failed = hint(judge(4, &ran("logs web", false, 1, None)));
        assert!(failed.contains("Is web still running"), "{failed}");
        let unknown = hint(judge(2, &ran("pss", false, 127, None)));
        assert!(unknown.contains("Type `ps`"), "{unknown}");
        assert!(is_done(&judge(7, &ran("kill web", false, 0, None))));
    }
}
