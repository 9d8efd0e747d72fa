//! Dependency steps on the local cluster with the real `kubesh` binary:
//! what the step installs must be loadable by the program as launched
//! (`ruby app.rb`, `node app.js`), with dependencies only the program's
//! directory has, so that nothing of this machine's own makes it pass.

mod common;

use common::{LocalCluster, Sandbox, bounded};
use predicates::str::contains;

fn installed(command: &str) -> bool {
    std::process::Command::new(command)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn gems_from_a_gemfile_are_loadable_by_ruby_app_rb() {
    if !installed("ruby") || !installed("bundle") {
        eprintln!("skipped: ruby and bundler are not installed (Debian: ruby ruby-bundler)");
        return;
    }
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    // A gem of the program's own: no gem server is needed.
    sandbox.write(
        "vendor/greet/greet.gemspec",
        "Gem::Specification.new do |s|\n  s.name = 'greet'\n  s.version = '1.0.0'\n  \
         s.summary = 'greets'\n  s.authors = ['kubesh']\n  s.files = ['lib/greet.rb']\nend\n",
    );
    sandbox.write(
        "vendor/greet/lib/greet.rb",
        "module Greet\n  def self.hello\n    'hello from a gem'\n  end\nend\n",
    );
    sandbox.write(
        "Gemfile",
        "source 'https://rubygems.org'\ngem 'greet', path: 'vendor/greet'\n",
    );
    sandbox.write("app.rb", "require 'greet'\nputs Greet.hello\n");
    bounded(cluster.kubesh(&sandbox), &["-c", "ruby app.rb"])
        .assert()
        .success()
        .stdout(contains("hello from a gem"));
}

#[test]
fn packages_from_package_json_are_loadable_by_node_app_js() {
    if !installed("node") || !installed("npm") {
        eprintln!("skipped: node and npm are not installed");
        return;
    }
    let sandbox = Sandbox::new();
    let cluster = LocalCluster::start(&sandbox);
    // A package of the program's own: no registry is needed.
    sandbox.write(
        "vendor/greet/package.json",
        r#"{"name": "greet", "version": "1.0.0", "main": "index.js"}"#,
    );
    sandbox.write(
        "vendor/greet/index.js",
        "exports.hello = () => 'hello from a package';\n",
    );
    sandbox.write(
        "package.json",
        r#"{"name": "app", "version": "1.0.0", "dependencies": {"greet": "file:vendor/greet"}}"#,
    );
    sandbox.write("app.js", "console.log(require('greet').hello());\n");
    bounded(cluster.kubesh(&sandbox), &["-c", "node app.js"])
        .assert()
        .success()
        .stdout(contains("hello from a package"));
}
