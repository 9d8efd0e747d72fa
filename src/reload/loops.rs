//! Telling a reload loop: a file that changes right after every reload —
//! a log another tool appends to on each reload line, a file the program's
//! own tooling writes — makes the next reload, for ever. Saves a person
//! makes do not follow each reload's end within moments, five times in a
//! row.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How many reloads in a row a file may change right after, before the
/// watch stops.
pub const LOOP_RELOADS: usize = 5;

/// How soon after a reload's end a save must begin to count as caused by
/// it: a tool reacting to the reload writes within milliseconds, while an
/// editor's autosave comes a second after the last key pressed.
const SOON: Duration = Duration::from_millis(500);

/// The reloads of one watched dproc so far.
#[derive(Default)]
pub struct Loops {
    /// When the last reload ended.
    last_end: Option<Instant>,
    /// For each file, how many reloads in a row it changed right after.
    streaks: BTreeMap<String, usize>,
}

impl Loops {
    /// Records a reload of the `changed` files, whose save began at
    /// `saved` (`None`: not a save, as when the watch starts) and which
    /// ended at `ended`. Returns the files that have changed right after
    /// each of the last [`LOOP_RELOADS`] reloads.
    pub fn record(
        &mut self,
        saved: Option<Instant>,
        changed: &BTreeSet<String>,
        ended: Instant,
    ) -> Vec<String> {
        let follows = match (self.last_end, saved) {
            (Some(end), Some(saved)) => saved >= end && saved - end <= SOON,
            _ => false,
        };
        self.last_end = Some(ended);
        let before = std::mem::take(&mut self.streaks);
        if !follows {
            return Vec::new();
        }
        self.streaks = changed
            .iter()
            .map(|file| (file.clone(), before.get(file).copied().unwrap_or(0) + 1))
            .collect();
        self.streaks
            .iter()
            .filter(|(_, streak)| **streak >= LOOP_RELOADS)
            .map(|(file, _)| file.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// Reloads of `changed`, each save `gap` after the previous reload's
    /// end, each reload 100 ms long; what the last one returned.
    fn reloads(
        loops: &mut Loops,
        start: Instant,
        gap: Duration,
        changed: &[&[&str]],
    ) -> Vec<String> {
        let mut found = Vec::new();
        let mut now = start;
        for names in changed {
            let saved = now + gap;
            now = saved + Duration::from_millis(100);
            found = loops.record(Some(saved), &files(names), now);
        }
        found
    }

    #[test]
    fn a_file_changed_right_after_five_reloads_in_a_row_is_a_loop() {
        let mut loops = Loops::default();
        let start = Instant::now();
        let soon = Duration::from_millis(5);
        // The first reload is the person's edit; app.log follows each one.
        let mut history: Vec<&[&str]> = vec![&["web.py"]];
        history.extend([&["app.log"][..]; 4]);
        assert!(reloads(&mut loops, start, soon, &history).is_empty());
        let later = start + Duration::from_secs(10);
        let mut loops = Loops::default();
        history.push(&["app.log", "web.py"]);
        assert_eq!(reloads(&mut loops, later, soon, &history), ["app.log"]);
    }

    #[test]
    fn saves_a_while_after_each_reload_are_a_person_s() {
        let mut loops = Loops::default();
        let autosave = Duration::from_millis(900);
        let history = [&["web.py"][..]; 10];
        assert!(reloads(&mut loops, Instant::now(), autosave, &history).is_empty());
    }

    #[test]
    fn a_pause_or_another_file_breaks_the_streak() {
        let mut loops = Loops::default();
        let soon = Duration::from_millis(5);
        let start = Instant::now();
        let streak = [&["app.log"][..]; 4];
        assert!(reloads(&mut loops, start, soon, &streak).is_empty());
        // The fifth comes late: a new start.
        let late = start + Duration::from_secs(60);
        assert!(
            loops
                .record(Some(late), &files(&["app.log"]), late)
                .is_empty()
        );
        let end = late + Duration::from_millis(100);
        assert!(reloads(&mut loops, end, soon, &streak[..3]).is_empty());
        // Another file alone breaks it too.
        let mut loops = Loops::default();
        let mut history: Vec<&[&str]> = vec![&["app.log"]; 3];
        history.push(&["web.py"]);
        history.extend([&["app.log"][..]; 4]);
        assert!(reloads(&mut loops, start, soon, &history).is_empty());
    }

    #[test]
    fn a_save_that_began_during_the_reload_did_not_follow_it() {
        let mut loops = Loops::default();
        let mut end = Instant::now() + Duration::from_secs(1);
        for _ in 0..10 {
            // Each save began 50 ms before the previous reload ended.
            let saved = end - Duration::from_millis(50);
            end = saved + Duration::from_millis(200);
            assert!(
                loops
                    .record(Some(saved), &files(&["web.py"]), end)
                    .is_empty()
            );
        }
        // A reload that did not come from a save never follows one.
        assert!(loops.record(None, &files(&["web.py"]), end).is_empty());
    }
}
