//! Stops running guests when the backend is asked to: every tick while guest code runs, the
//! ticker asks whether to stop and, if so, raises the stop flag of every interpreter it watches.
//!
//! One helper thread per backend. It never calls PostgreSQL (whether to stop is a read of the
//! backend's interrupt flags), is created with every signal blocked (so PostgreSQL's signals always
//! reach the backend's own thread), and parks whenever no guest code runs, so an idle backend
//! costs no wakeups.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::Duration;

use parking_lot::Mutex;

use super::stop::StopFlag;

/// How often running guest code checks for a pending cancel.
pub const TICK: Duration = Duration::from_millis(10);

pub struct Ticker {
    state: Arc<State>,
    thread: Thread,
}

#[derive(Default)]
struct State {
    /// Guest calls in progress (calls nest when a guest reaches the database that calls a guest).
    running: AtomicUsize,
    idle: AtomicBool,
    /// The live interpreters' flags, by generation. An interpreter leaves before its memory goes,
    /// and the ticker raises flags only while it holds the lock.
    watched: Mutex<Vec<Watched>>,
}

struct Watched {
    generation: u64,
    flag: StopFlag,
    /// Must only read memory: it runs on the ticker's thread.
    should_stop: fn() -> bool,
}

impl Ticker {
    pub fn start() -> std::io::Result<Ticker> {
        let state = Arc::new(State::default());
        let shared = state.clone();
        let handle = spawn_with_signals_blocked("plpywasm-ticker", move || loop {
            thread::sleep(TICK);
            for watched in shared.watched.lock().iter() {
                if (watched.should_stop)() {
                    watched.flag.raise();
                }
            }
            if shared.running.load(SeqCst) == 0 {
                shared.idle.store(true, SeqCst);
                // Re-check after publishing `idle`: a call that started in between either saw
                // `idle` and unparks us, or is seen here.
                if shared.running.load(SeqCst) == 0 {
                    thread::park();
                }
                shared.idle.store(false, SeqCst);
            }
        })?;
        Ok(Ticker { state, thread: handle.thread().clone() })
    }

    /// Raises `flag` whenever `should_stop` says so while guest code runs, until `forget`.
    pub fn watch(&self, generation: u64, flag: StopFlag, should_stop: fn() -> bool) {
        self.state.watched.lock().push(Watched { generation, flag, should_stop });
    }

    pub fn forget(&self, generation: u64) {
        self.state.watched.lock().retain(|watched| watched.generation != generation);
    }

    /// Lowers the flag of an interpreter about to run: the ticker raises every watched flag, so
    /// it may have been raised while the interpreter was idle, for a cancel handled since. Under
    /// the lock, so that the flag is raised again only for a cancel that is pending after this.
    pub fn lower(&self, flag: StopFlag) {
        let _watched = self.state.watched.lock();
        flag.clear();
    }

    /// Keeps the ticker checking until the returned guard is dropped.
    pub fn running(&self) -> Running<'_> {
        self.state.running.fetch_add(1, SeqCst);
        if self.state.idle.load(SeqCst) {
            self.thread.unpark();
        }
        Running(self)
    }
}

pub struct Running<'a>(&'a Ticker);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.state.running.fetch_sub(1, SeqCst);
    }
}

/// Runs `f` with every signal blocked in the calling thread: threads started inside inherit the mask.
pub fn with_signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(libc::sigset_t);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the mask saved below.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        }
    }
    // SAFETY: plain libc calls on sigset_t values owned by this frame.
    let _restore = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        Restore(previous)
    };
    f()
}

fn spawn_with_signals_blocked(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    with_signals_blocked(|| thread::Builder::new().name(name.into()).stack_size(64 << 10).spawn(f))
}
