//! Shell variables: `NAME=value`, `export`, `unset`.
//!
//! A variable is either a shell variable or an exported one. Exported
//! variables are handed to every program kubesh launches afterwards. The
//! process environment kubesh was started with can be read (`$HOME`) but is
//! not exported: nothing from the local machine reaches the cluster unless
//! the user exports it by name.

use std::collections::{BTreeMap, BTreeSet};

/// Where a variable's value comes from, as `env` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Set in this shell, not exported.
    Shell,
    /// Set in this shell and exported to launched programs.
    Exported,
    /// Told by the cluster: the address of a background dproc of the
    /// current environment (`STOCK_GEN_URL`); passed to launched programs.
    Cluster,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::Shell => "shell",
            Origin::Exported => "exported",
            Origin::Cluster => "cluster",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub value: String,
    pub origin: Origin,
}

/// All variables of the shell, sorted by name.
#[derive(Debug, Default)]
pub struct Variables {
    map: BTreeMap<String, Variable>,
    /// Names unset in the shell that the process environment still has.
    hidden: BTreeSet<String>,
}

impl Variables {
    /// The value of a shell variable, falling back to the process
    /// environment kubesh was started with.
    pub fn get(&self, name: &str) -> Option<String> {
        match self.map.get(name) {
            Some(variable) => Some(variable.value.clone()),
            None if self.hidden.contains(name) => None,
            None => std::env::var(name).ok(),
        }
    }

    /// Sets a variable, keeping it exported if it was.
    pub fn set(&mut self, name: &str, value: String) {
        self.hidden.remove(name);
        match self.map.get_mut(name) {
            // A value set by hand is the user's, no longer the cluster's.
            Some(variable) if variable.origin == Origin::Cluster => {
                variable.value = value;
                variable.origin = Origin::Shell;
            }
            Some(variable) => variable.value = value,
            None => {
                self.map.insert(
                    name.to_string(),
                    Variable {
                        value,
                        origin: Origin::Shell,
                    },
                );
            }
        }
    }

    /// Marks a variable exported, setting it first when a value is given.
    /// Without a value, the current value (possibly from the process
    /// environment) is exported; `false` when there is none.
    pub fn export(&mut self, name: &str, value: Option<String>) -> bool {
        let Some(value) = value.or_else(|| self.get(name)) else {
            return false;
        };
        self.hidden.remove(name);
        self.map.insert(
            name.to_string(),
            Variable {
                value,
                origin: Origin::Exported,
            },
        );
        true
    }

    /// Removes a variable, also one kubesh was started with; `false` when
    /// it was not set.
    pub fn unset(&mut self, name: &str) -> bool {
        let inherited = std::env::var_os(name).is_some() && self.hidden.insert(name.to_string());
        self.map.remove(name).is_some() || inherited
    }

    /// The variable as it is now, to put back with [`Variables::restore`].
    pub fn save(&self, name: &str) -> Option<Variable> {
        self.map.get(name).cloned()
    }

    /// Puts back a variable saved with [`Variables::save`].
    pub fn restore(&mut self, name: &str, saved: Option<Variable>) {
        match saved {
            Some(variable) => self.map.insert(name.to_string(), variable),
            None => self.map.remove(name),
        };
    }

    /// Every shell variable, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Variable)> {
        self.map
            .iter()
            .map(|(name, variable)| (name.as_str(), variable))
    }

    /// Replaces the variables the cluster defines; a name the user set
    /// keeps the user's value.
    pub fn set_cluster(&mut self, variables: Vec<(String, String)>) {
        self.map.retain(|_, v| v.origin != Origin::Cluster);
        for (name, value) in variables {
            self.map.entry(name).or_insert(Variable {
                value,
                origin: Origin::Cluster,
            });
        }
    }

    /// The variables marked with `export`.
    pub fn exported(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter()
            .filter(|(_, v)| v.origin == Origin::Exported)
            .map(|(name, v)| (name, v.value.as_str()))
    }

    /// The variables launched programs receive: exported ones and the
    /// cluster's.
    pub fn for_programs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter()
            .filter(|(_, v)| v.origin != Origin::Shell)
            .map(|(name, v)| (name, v.value.as_str()))
    }
}

/// Whether `name` can be a variable name: a letter or `_`, then letters,
/// digits and `_`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_keeps_and_set_preserves_the_mark() {
        let mut vars = Variables::default();
        vars.set("A", "1".into());
        assert!(vars.export("A", None));
        vars.set("A", "2".into());
        assert_eq!(vars.exported().collect::<Vec<_>>(), [("A", "2")]);
        assert!(!vars.export("KUBESH_TEST_SURELY_UNSET", None));
        assert!(vars.unset("A"));
        assert!(!vars.unset("A"));
        assert!(vars.get("PATH").is_some());
        assert!(vars.unset("PATH"));
        assert_eq!(vars.get("PATH"), None, "an inherited variable can be unset");
        vars.set("PATH", "/x".into());
        assert_eq!(vars.get("PATH").as_deref(), Some("/x"));
    }

    #[test]
    fn cluster_variables_are_replaced_but_never_override_the_user() {
        let mut vars = Variables::default();
        vars.set("MINE_URL", "by hand".into());
        vars.set_cluster(vec![
            ("WEB_URL".into(), "http://web:80".into()),
            ("MINE_URL".into(), "x".into()),
        ]);
        assert_eq!(vars.get("MINE_URL").as_deref(), Some("by hand"));
        assert_eq!(
            vars.for_programs().collect::<Vec<_>>(),
            [("WEB_URL", "http://web:80")]
        );
        assert_eq!(vars.exported().count(), 0);
        vars.set_cluster(vec![]);
        assert_eq!(vars.get("WEB_URL"), None);
        vars.set_cluster(vec![("WEB_URL".into(), "http://web:80".into())]);
        vars.set("WEB_URL", "mine".into());
        vars.set_cluster(vec![]);
        assert_eq!(
            vars.get("WEB_URL").as_deref(),
            Some("mine"),
            "set by hand, it is the user's"
        );
    }

    #[test]
    fn names() {
        assert!(is_valid_name("_a1"));
        assert!(!is_valid_name("1a"));
        assert!(!is_valid_name("a-b"));
        assert!(!is_valid_name(""));
    }
}
