//! Ctrl-C while a command runs: the signal sets a flag that long-running
//! builtins, launches and cluster requests poll, and the shell clears it
//! once the command has ended.
//! (At the prompt the line editor reads Ctrl-C as a key instead.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A shared "Ctrl-C was pressed" flag.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Routes SIGINT to the flag instead of ending the process.
    pub fn install() -> std::io::Result<Interrupt> {
        let interrupt = Interrupt::default();
        signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt.0))?;
        Ok(interrupt)
    }

    /// Whether Ctrl-C was pressed since the flag was last taken.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sets the flag as Ctrl-C would: stops what runs in the foreground.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Reads and clears the flag.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }

    /// Sleeps for `duration` unless interrupted; `false` when interrupted.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = std::time::Instant::now() + duration;
        loop {
            if self.is_set() {
                return false;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }
}
