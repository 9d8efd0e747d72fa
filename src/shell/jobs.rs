//! The shell's background jobs (port forwards): numbered as in other shells
//! (one more than the highest number in use), listed by `jobs`, stopped by
//! `kill %N`, and all ended when the shell exits (they run on the
//! connection's runtime, which goes with it).

use std::sync::{Arc, Mutex};

use tokio::task::AbortHandle;

/// One background job.
pub struct Job {
    pub number: usize,
    /// What it does, e.g. `forward web 8080 -> 127.0.0.1:8080`.
    pub description: String,
    /// Why it ended, once it has ended on its own.
    pub ended: Arc<Mutex<Option<String>>>,
    pub task: AbortHandle,
}

impl Job {
    /// `running`, or `done` with the reason it ended.
    pub fn state(&self) -> String {
        let reason = self.ended.lock().ok().and_then(|r| r.clone());
        match reason {
            Some(reason) => format!("done ({reason})"),
            None if self.task.is_finished() => "done".to_string(),
            None => "running".to_string(),
        }
    }

    fn is_running(&self) -> bool {
        !self.task.is_finished() && self.ended.lock().map(|r| r.is_none()).unwrap_or(false)
    }
}

/// The jobs of this shell.
#[derive(Default)]
pub struct Jobs {
    jobs: Vec<Job>,
}

impl Jobs {
    /// The number the next job gets.
    pub fn next_number(&self) -> usize {
        self.jobs.iter().map(|j| j.number).max().unwrap_or(0) + 1
    }

    pub fn add(&mut self, job: Job) {
        self.jobs.push(job);
    }

    /// Every job as `(number, description, state)`; jobs that have ended
    /// are listed this once, then forgotten.
    pub fn list(&mut self) -> Vec<(usize, String, String)> {
        let listed = self
            .jobs
            .iter()
            .map(|j| (j.number, j.description.clone(), j.state()))
            .collect();
        self.jobs.retain(Job::is_running);
        listed
    }

    /// Ends every running job for `reason` (shown by `jobs` afterwards);
    /// returns each one's number and description.
    pub fn end_all(&mut self, reason: &str) -> Vec<(usize, String)> {
        let mut ended = Vec::new();
        for job in self.jobs.iter().filter(|j| j.is_running()) {
            job.task.abort();
            if let Ok(mut why) = job.ended.lock() {
                *why = Some(reason.to_string());
            }
            ended.push((job.number, job.description.clone()));
        }
        ended
    }

    /// Stops job `number`; returns its description.
    pub fn kill(&mut self, number: usize) -> Option<String> {
        let at = self.jobs.iter().position(|j| j.number == number)?;
        let job = self.jobs.remove(at);
        job.task.abort();
        Some(job.description)
    }
}

/// The job number in `%N`, if `word` is one.
pub fn job_number(word: &str) -> Option<usize> {
    let digits = word.strip_prefix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_numbers() {
        assert_eq!(job_number("%1"), Some(1));
        assert_eq!(job_number("%12"), Some(12));
        for word in ["%", "%0", "%a", "1", "%-1", "%1x"] {
            assert_eq!(job_number(word), None, "{word}");
        }
    }

    #[test]
    fn numbering_lists_and_kills() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut jobs = Jobs::default();
        let job = |number: usize, jobs: &Jobs| {
            assert_eq!(jobs.next_number(), number);
            let task = runtime.spawn(std::future::pending::<()>()).abort_handle();
            Job {
                number,
                description: format!("job {number}"),
                ended: Arc::default(),
                task,
            }
        };
        let first = job(1, &jobs);
        jobs.add(first);
        let second = job(2, &jobs);
        let ended = Arc::clone(&second.ended);
        jobs.add(second);
        *ended.lock().unwrap() = Some("web is gone".into());
        assert_eq!(
            jobs.list(),
            [
                (1, "job 1".into(), "running".into()),
                (2, "job 2".into(), "done (web is gone)".into())
            ]
        );
        assert_eq!(jobs.list().len(), 1, "a job that ended is listed once");
        assert_eq!(jobs.kill(1).as_deref(), Some("job 1"));
        assert_eq!(jobs.kill(1), None);
        assert_eq!(jobs.next_number(), 1);

        // Switching context ends the running jobs, which say why.
        let third = job(1, &jobs);
        jobs.add(third);
        assert_eq!(jobs.end_all("switched"), [(1, "job 1".to_string())]);
        assert_eq!(jobs.end_all("again"), [], "ended jobs are not ended twice");
        assert_eq!(jobs.list(), [(1, "job 1".into(), "done (switched)".into())]);
    }
}
