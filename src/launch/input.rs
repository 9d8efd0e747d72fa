//! kubesh's stdin for a foreground program: a thread reads it (without
//! buffering, and polling so that it stops as soon as the program ends and
//! never takes a line meant for the prompt) and hands the chunks to the
//! program's `pods/attach` stream; `None` marks the end of input.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

/// The reading thread; [`Reader::stop`] ends it.
pub struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Starts reading stdin; the chunks arrive on the returned receiver.
pub fn read_stdin() -> (Reader, mpsc::Receiver<Vec<u8>>) {
    let (sender, receiver) = mpsc::channel(16);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("kubesh-stdin".into())
        .spawn(move || copy(&flag, &sender))
        .ok();
    (Reader { stop, thread }, receiver)
}

impl Reader {
    /// Stops reading and waits for the thread (at most one poll interval).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies stdin to `sender` until end of input (the sender is then dropped),
/// `stop`, or the receiver going away.
fn copy(stop: &AtomicBool, sender: &mpsc::Sender<Vec<u8>>) {
    let mut buffer = vec![0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, 50) };
        if ready <= 0 {
            continue; // a timeout, or EINTR (Ctrl-C): check `stop` again
        }
        if poll.revents & libc::POLLNVAL != 0 {
            return; // no stdin at all
        }
        // SAFETY: reads into a buffer of the length given.
        let read =
            unsafe { libc::read(libc::STDIN_FILENO, buffer.as_mut_ptr().cast(), buffer.len()) };
        match read {
            0 => return,
            n if n > 0 => {
                let chunk = buffer[..n as usize].to_vec();
                if sender.blocking_send(chunk).is_err() {
                    return;
                }
            }
            _ => {
                let error = std::io::Error::last_os_error();
                if !matches!(
                    error.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) {
                    return;
                }
            }
        }
    }
}
