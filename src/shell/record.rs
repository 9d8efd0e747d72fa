//! The shell's own record of what ran: each command's words, whether it
//! went to the background, its exit status and the dproc it launched. A
//! [`Guide`] (the tour) judges from it what a person did, not from the
//! text printed.

use std::collections::VecDeque;

use super::Shell;

/// A command this shell ran and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The command name and its arguments, expanded.
    pub args: Vec<String>,
    /// A trailing `&`.
    pub background: bool,
    pub status: i32,
    /// The dproc the command launched, if it launched one.
    pub launched: Option<String>,
}

/// The last commands run, oldest first, each with its number in the
/// session (1 for the first).
#[derive(Debug, Default)]
pub struct Record {
    kept: VecDeque<Ran>,
    count: u64,
}

impl Record {
    /// How many are kept: a guide reads the commands of one line.
    const KEPT: usize = 256;

    pub fn push(&mut self, ran: Ran) {
        if self.kept.len() == Self::KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back(ran);
        self.count += 1;
    }

    /// How many commands have run in this session.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The commands run after the first `count` (those still kept).
    pub fn since(&self, count: u64) -> impl Iterator<Item = &Ran> {
        let newer = usize::try_from(self.count.saturating_sub(count)).unwrap_or(usize::MAX);
        self.kept.iter().skip(self.kept.len().saturating_sub(newer))
    }
}

/// Something that follows what is typed at the prompt, as the tour does:
/// told after each line has run, and when the shell ends.
pub trait Guide {
    /// After a line typed at the prompt has run; `false` ends the guide.
    fn after_line(&mut self, shell: &mut Shell) -> bool;
    /// Says again where the person is and what comes next.
    fn repeat(&mut self, shell: &mut Shell);
    /// The shell ends (Ctrl-D, `exit`) while the guide is on.
    fn leave(&mut self, shell: &mut Shell);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(name: &str) -> Ran {
        Ran {
            args: vec![name.to_string()],
            background: false,
            status: 0,
            launched: None,
        }
    }

    #[test]
    fn since_gives_the_commands_after_a_count_even_when_old_ones_are_dropped() {
        let mut record = Record::default();
        record.push(ran("a"));
        let after_a = record.count();
        record.push(ran("b"));
        record.push(ran("c"));
        let names: Vec<_> = record.since(after_a).map(|r| r.args[0].as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(record.since(record.count()).count(), 0);
        for _ in 0..1000 {
            record.push(ran("x"));
        }
        assert_eq!(record.since(0).count(), Record::KEPT);
        assert_eq!(record.since(record.count() - 2).count(), 2);
    }
}
