//! kubesh in script mode: files, `-c`, stdin, arguments, exit statuses and
//! the messages a user sees when something is wrong — the cases that need
//! more than one script file (files beside it, a terminal, a fake kubectl).
//! Cases that are one script and what it prints are data, in
//! `tests/scripts/` (run by `script_cases.rs`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::assert::OutputAssertExt;
use common::Sandbox;
use predicates::prelude::*;
use predicates::str::contains;

fn run_c(sandbox: &Sandbox, line: &str) -> assert_cmd::assert::Assert {
    sandbox.command().arg("-c").arg(line).assert()
}

#[test]
fn dash_c_runs_a_line_with_arguments() {
    let sandbox = Sandbox::new();
    sandbox
        .command()
        .args(["-c", "echo \"$#:$1:$2\"; echo $@", "a b", "c"])
        .assert()
        .success()
        .stdout("2:a b:c\na b c\n");
}

#[test]
fn a_script_gets_its_name_and_arguments() {
    let sandbox = Sandbox::new();
    let script = sandbox.write("args.kubesh", "echo $0 $# \"$1\" ${2:-none} ${3:-none}\n");
    sandbox
        .command()
        .arg(&script)
        .args(["one two", "three"])
        .assert()
        .success()
        .stdout(format!("{} 2 one two three none\n", script.display()));
}

#[test]
fn a_launch_without_a_reachable_cluster_says_so_and_suggests_the_local_one() {
    let sandbox = Sandbox::new();
    sandbox.write("service.js", "console.log(1)\n");
    run_c(&sandbox, "node service.js &").code(1).stderr(
        contains("cannot reach the cluster at https://127.0.0.1:9")
            .and(contains("`kubesh --local` starts a local one")),
    );
}

#[test]
fn programs_that_cannot_run_on_linux_nodes_are_refused_before_anything_is_created() {
    let sandbox = Sandbox::new();
    sandbox.write("tool.exe", b"MZ\x90\0".as_slice());
    sandbox.write("notes", "plain text\n");
    std::fs::create_dir(sandbox.work().join("dir")).unwrap();
    run_c(&sandbox, "./tool.exe")
        .code(126)
        .stderr(contains("is a Windows executable").and(contains("GOOS=linux")));
    run_c(&sandbox, "./notes")
        .code(126)
        .stderr(contains("kubesh does not know how to run this file"));
    run_c(&sandbox, "python dir")
        .code(126)
        .stderr(contains("dir: is a directory"));
    run_c(&sandbox, "node").code(2).stderr(contains(
        "name the program file to run, e.g. `node program.js`",
    ));
}

#[test]
fn invalid_utf8_is_reported_without_a_crash() {
    let sandbox = Sandbox::new();
    sandbox.write("binary.kubesh", b"echo ok\necho caf\xe9\n".as_slice());
    sandbox
        .command()
        .arg("binary.kubesh")
        .assert()
        .code(2)
        .stdout("ok\n")
        .stderr(contains(
            "binary.kubesh:2: column 9: the line is not valid UTF-8",
        ));
}

#[test]
fn a_megabyte_line_runs() {
    let sandbox = Sandbox::new();
    sandbox.write("long.kubesh", format!("echo {}\n", "x".repeat(1 << 20)));
    let output = sandbox.command().arg("long.kubesh").output().unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout.len(), (1 << 20) + 1);
}

#[test]
fn missing_and_directory_scripts_are_clear_errors() {
    let sandbox = Sandbox::new();
    sandbox
        .command()
        .arg("nope.kubesh")
        .assert()
        .code(127)
        .stderr("kubesh: nope.kubesh: no such file\n");
    std::fs::create_dir(sandbox.work().join("dir")).unwrap();
    sandbox
        .command()
        .arg("dir")
        .assert()
        .code(126)
        .stderr("kubesh: dir: is a directory, not a script\n");
}

#[test]
fn a_script_on_stdin_runs() {
    let sandbox = Sandbox::new();
    assert_cmd::Command::from_std(sandbox.command())
        .write_stdin("X=4\necho $X\nfalse-command\necho never\n")
        .assert()
        .code(127)
        .stdout("4\n")
        .stderr(contains("stdin:3: stopped"));
}

#[test]
fn cat_of_stdin_in_a_script_read_from_stdin_refuses_rather_than_hangs() {
    let sandbox = Sandbox::new();
    let mut command = assert_cmd::Command::from_std(sandbox.command());
    command
        .timeout(Duration::from_secs(10))
        .write_stdin("set +e\ncat\necho after $?\n")
        .assert()
        .success()
        .stdout("after 1\n")
        .stderr(contains(
            "kubesh: cat: standard input is the script kubesh is running, not data",
        ));
}

#[test]
fn a_shebang_script_runs_directly() {
    let sandbox = Sandbox::new();
    let script = sandbox.write("hello", "#!/usr/bin/env kubesh\necho \"hi $1\"\nexit 4\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin_dir = common::kubesh_binary().parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut command = Command::new(&script);
    sandbox.apply(&mut command);
    command
        .env("PATH", path)
        .arg("there")
        .assert()
        .code(4)
        .stdout("hi there\n");
}

#[test]
fn the_start_environment_is_readable_but_not_exported() {
    let sandbox = Sandbox::new();
    sandbox
        .command()
        .env("FROM_OUTSIDE", "outside")
        .args([
            "-c",
            "echo $FROM_OUTSIDE; export; export FROM_OUTSIDE; export",
        ])
        .assert()
        .success()
        .stdout("outside\nexport FROM_OUTSIDE=outside\n");
}

#[test]
fn cd_pwd_tilde_and_dash() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.work().join("sub")).unwrap();
    let work = sandbox.work().canonicalize().unwrap();
    let home = sandbox.path("home").canonicalize().unwrap();
    run_c(
        &sandbox,
        "cd sub; pwd; cd -; cd ~; pwd; cd; pwd; cd nowhere",
    )
    .code(1)
    .stdout(format!(
        "{}\n{}\n{}\n{}\n",
        work.join("sub").display(),
        work.display(),
        home.display(),
        home.display()
    ))
    .stderr(contains("cd: nowhere: no such directory"));
}

#[test]
fn ls_and_cat() {
    let sandbox = Sandbox::new();
    sandbox.write("b.txt", "bee\n");
    sandbox.write("a.txt", "ay\n");
    sandbox.write(".hidden", "");
    std::fs::create_dir(sandbox.work().join("dir")).unwrap();
    run_c(&sandbox, "ls")
        .success()
        .stdout("a.txt\nb.txt\ndir/\n");
    run_c(&sandbox, "ls -a")
        .success()
        .stdout(".hidden\na.txt\nb.txt\ndir/\n");
    run_c(&sandbox, "cat a.txt b.txt")
        .success()
        .stdout("ay\nbee\n");
    run_c(&sandbox, "set +e; cat a.txt nope dir b.txt")
        .code(1)
        .stdout("ay\nbee\n")
        .stderr(contains("cat: nope: no such file").and(contains("cat: dir: is a directory")));
}

#[test]
fn source_runs_in_this_shell_with_its_own_arguments() {
    let sandbox = Sandbox::new();
    sandbox.write("lib.kubesh", "LIB=\"loaded $1\"\n");
    run_c(
        &sandbox,
        "set -- outer; source lib.kubesh inner; echo \"$LIB $1\"",
    )
    .success()
    .stdout("loaded inner outer\n");
    sandbox.write("failing.kubesh", "echo in\ncat missing\necho unreachable\n");
    run_c(&sandbox, "source failing.kubesh; echo after")
        .code(1)
        .stdout("in\n")
        .stderr(contains("failing.kubesh:2: stopped"));
    sandbox.write("loop.kubesh", "source loop.kubesh\n");
    run_c(&sandbox, "source loop.kubesh")
        .code(2)
        .stderr(contains("more than 64 levels deep"));
}

#[test]
fn help_lists_every_builtin_and_prints_pages() {
    let sandbox = Sandbox::new();
    let pages = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/builtins")).unwrap();
    let listing = sandbox.command().args(["-c", "help"]).output().unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    for page in pages {
        let name = page
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            listing.contains(&format!(" {name} ")) || listing.contains(&format!(" {name}\n")),
            "{name} in:\n{listing}"
        );
    }
    run_c(&sandbox, "help cd")
        .success()
        .stdout(contains("# cd").and(contains("cd -")));
    run_c(&sandbox, "help nope")
        .code(1)
        .stderr(contains("no such builtin"));
}

/// A directory holding a `kubectl` that prints its arguments, each in
/// `<>`, on one line and exits with `status`.
fn kubectl_recorder(sandbox: &Sandbox, status: i32) -> std::path::PathBuf {
    let bin = sandbox.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let recorder = bin.join("kubectl");
    std::fs::write(
        &recorder,
        format!("#!/bin/sh\nfor a in \"$@\"; do printf '<%s>' \"$a\"; done\necho\nexit {status}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn literally_passes_words_to_kubectl_with_context_and_namespace() {
    let sandbox = Sandbox::new();
    let bin = kubectl_recorder(&sandbox, 5);
    sandbox
        .command()
        .env("PATH", &bin)
        .args([
            "-c",
            "X='a b'; set +e; literally get pods -l \"$X\"; echo $?; `get ns",
        ])
        .assert()
        .code(5)
        .stdout(
            "<--context><test-ctx><--namespace><shop><get><pods><-l><a b>\n5\n\
             <--context><test-ctx><--namespace><shop><get><ns>\n",
        );
    sandbox
        .command()
        .env("PATH", sandbox.path("home"))
        .args(["-c", "literally get pods"])
        .assert()
        .code(127)
        .stderr(contains("kubectl is not installed or not on PATH"));
}

#[test]
fn kubectl_typed_as_in_any_shell_runs_with_the_shell_s_context_and_namespace_first() {
    let sandbox = Sandbox::new();
    let bin = kubectl_recorder(&sandbox, 0);
    // The line's own flags come after the shell's, so they win.
    sandbox
        .command()
        .env("PATH", &bin)
        .args(["-c", "kubectl -n kube-system get pods; kubectl"])
        .assert()
        .success()
        .stdout(
            "<--context><test-ctx><--namespace><shop><-n><kube-system><get><pods>\n\
             <--context><test-ctx><--namespace><shop>\n",
        );
    sandbox
        .command()
        .env("PATH", sandbox.path("home"))
        .args(["-c", "kubectl get pods"])
        .assert()
        .code(127)
        .stderr(contains(
            "kubesh: kubectl: kubectl is not installed or not on PATH",
        ));
}

#[test]
fn kubectl_at_the_local_cluster_lists_its_namespaces_and_honours_dash_n() {
    let sandbox = Sandbox::new();
    let cluster = common::LocalCluster::start(&sandbox);
    cluster
        .kubesh(&sandbox)
        .args([
            "-c",
            "kubectl get namespaces -o name; \
             kubectl -n kube-public create configmap greeting --from-literal=word=hi; \
             kubectl -n kube-public get configmap greeting -o name; \
             kubectl get configmap greeting",
        ])
        .assert()
        .code(1)
        .stdout(
            contains("namespace/default\nnamespace/kube-node-lease\n")
                .and(contains("configmap/greeting created\nconfigmap/greeting\n")),
        )
        .stderr(contains("configmaps \"greeting\" not found"));
}

#[test]
fn ctrl_c_interrupts_sleep_and_stops_the_script() {
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .command()
        .args(["-c", "echo started; sleep 30; echo after"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"started\n");
    let started = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "kubesh did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "", "nothing runs after the interrupted command");
}

#[test]
fn builtins_refuse_the_background_marker() {
    let sandbox = Sandbox::new();
    run_c(&sandbox, "echo x &")
        .code(2)
        .stderr(contains("builtins run in the shell, without `&`"));
}

#[test]
fn everything_after_the_script_is_an_argument_of_the_script() {
    let sandbox = Sandbox::new();
    sandbox.write("args.kubesh", "echo \"$#\" \"$@\"\n");
    sandbox
        .command()
        .args(["args.kubesh", "-n", "foo", "-c", "echo hijack", "--help"])
        .assert()
        .success()
        .stdout("5 -n foo -c echo hijack --help\n");
}

#[test]
fn assignments_read_left_to_right_and_inherited_variables_can_be_unset() {
    let sandbox = Sandbox::new();
    sandbox
        .command()
        .env("FROM_OUTSIDE", "outside")
        .args([
            "-c",
            "B=2 A=$B; echo $A; unset FROM_OUTSIDE; echo ${FROM_OUTSIDE:-gone}",
        ])
        .assert()
        .success()
        .stdout("2\ngone\n");
}

#[test]
fn pwd_and_oldpwd_follow_cd() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.work().join("sub")).unwrap();
    let work = sandbox.work().canonicalize().unwrap();
    run_c(&sandbox, "cd sub; echo $PWD $OLDPWD")
        .success()
        .stdout(format!(
            "{} {}\n",
            work.join("sub").display(),
            work.display()
        ));
}

#[test]
fn the_stop_message_shows_the_command_that_ran() {
    let sandbox = Sandbox::new();
    run_c(&sandbox, "cat \"$?\"")
        .code(1)
        .stderr(contains("stopped: `cat 0` failed with status 1"));
}

#[test]
fn lines_continue_after_a_backslash_or_inside_quotes_but_not_after_a_comment() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "lines.kubesh",
        "echo one \\\n  two\n# a path C:\\\necho visible\necho \"multi\nline\"\ncat missing\n",
    );
    sandbox
        .command()
        .arg("lines.kubesh")
        .assert()
        .code(1)
        .stdout("one two\nvisible\nmulti\nline\n")
        .stderr(contains("lines.kubesh:7: stopped"));
    sandbox.write("open.kubesh", "echo 'never closed\necho more\n");
    sandbox
        .command()
        .arg("open.kubesh")
        .assert()
        .code(2)
        .stderr(contains(
            "open.kubesh:1: column 6: unterminated single quote",
        ));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .command()
        .args(["-c", "help; help; help"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(141));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn an_unwritable_stderr_does_not_crash() {
    let sandbox = Sandbox::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let status = sandbox
        .command()
        .args(["-c", "no-such-command"])
        .stderr(full)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(127));
}

#[test]
fn a_script_on_stdin_runs_as_its_lines_arrive() {
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"echo first\n").unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    // Read while stdin is still open: the first line ran before the input ended.
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"first\n");
    std::io::Write::write_all(&mut stdin, b"echo second\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "second\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn set_takes_combined_flags() {
    let sandbox = Sandbox::new();
    run_c(&sandbox, "set +ex; cat missing; echo went-on")
        .success()
        .stdout("went-on\n");
    run_c(&sandbox, "set -u")
        .code(2)
        .stderr(contains("-u: not an option kubesh has"));
}

#[test]
fn short_names_are_not_matched_to_unrelated_builtins() {
    let sandbox = Sandbox::new();
    // Where git is not a command of this machine either.
    sandbox
        .command()
        .env("PATH", sandbox.path("home"))
        .args(["-c", "git status"])
        .assert()
        .code(127)
        .stderr(contains(
            "kubesh: git: not a builtin, a file or a known runtime (`help` lists the builtins)",
        ));
}

#[test]
fn kubeconfigs_under_any_name_are_left_out_and_named_but_ordinary_files_ship() {
    let sandbox = Sandbox::new();
    sandbox.write("app.py", "print('hello')\n");
    sandbox.write("admin.conf", common::KUBECONFIG);
    sandbox.write("deploy/my-cluster.yaml", common::KUBECONFIG);
    sandbox.write(
        "README.md",
        "# App\n\nIt reads a kubeconfig: clusters:, users: and a token: for each.\n",
    );
    sandbox.write("login.py", "password = input('password: ')\n");
    let output = sandbox
        .command()
        .args(["--dry-run", "-c", "python app.py"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "left out of the bundle, as they look like credentials: admin.conf (kubeconfig), \
             deploy/my-cluster.yaml (kubeconfig); pass secrets with `export --from-secret`, \
             or name the file as the program to ship it"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("README.md") && !stderr.contains("login.py"),
        "{stderr}"
    );
}

#[test]
fn runtimes_lists_the_forms_each_runtime_also_runs() {
    let sandbox = Sandbox::new();
    run_c(&sandbox, "runtimes").success().stdout(
        contains("  also runs     python -c CODE, python -m MODULE\n")
            .and(contains(
                "  also runs     node -e CODE, node --eval CODE, node -p CODE",
            ))
            .and(contains("  also runs     sh -c CODE\n")),
    );
}

#[test]
fn read_takes_a_line_of_stdin_into_variables_and_pause_goes_on_without_a_terminal() {
    let sandbox = Sandbox::new();
    let script = sandbox.write(
        "greet.kubesh",
        "read -p 'name? ' NAME\nread FIRST REST\npause 'Look at this'\n\
         echo \"hello $NAME; $FIRST / $REST\"\nset +e\nread LAST\necho \"end of input: $?\"\n",
    );
    let mut command = sandbox.command();
    command.arg(&script);
    assert_cmd::Command::from_std(command)
        .write_stdin("Ada Lovelace\none two three\n")
        .assert()
        .success()
        .stdout("hello Ada Lovelace; one / two three\nend of input: 1\n")
        .stderr(contains("name? ").and(contains("Look at this")));
}

#[test]
fn read_refuses_when_the_script_itself_is_stdin() {
    let sandbox = Sandbox::new();
    assert_cmd::Command::from_std(sandbox.command())
        .write_stdin("read NAME\necho not reached\n")
        .assert()
        .failure()
        .stdout("")
        .stderr(contains(
            "read: standard input is the script kubesh is running",
        ));
}
