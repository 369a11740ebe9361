//! A growing pool of threads for jobs that must not wait for each other
//! (the daemon's host requests from a connector process).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Threads for work that arrives on one reading thread and must not wait
/// for other work in progress: each job runs on a thread of its own;
/// threads are kept for later jobs, and a new one starts whenever every
/// thread has a job. Only one thread submits.
pub(crate) struct Pool {
    name: &'static str,
    tx: mpsc::Sender<Job>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    threads: AtomicUsize,
    /// Calls submitted and not finished.
    outstanding: Arc<AtomicUsize>,
}

impl Pool {
    pub(crate) fn new(name: &'static str) -> Pool {
        let (tx, rx) = mpsc::channel();
        Pool { name, tx, rx: Arc::new(Mutex::new(rx)), threads: AtomicUsize::new(0), outstanding: Arc::default() }
    }

    pub(crate) fn run(&self, job: Job) {
        let outstanding = self.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        if outstanding > self.threads.load(Ordering::SeqCst) {
            let (rx, done) = (self.rx.clone(), self.outstanding.clone());
            let spawned = std::thread::Builder::new().name(self.name.into()).spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
                done.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_ok() {
                self.threads.fetch_add(1, Ordering::SeqCst);
            }
        }
        let _ = self.tx.send(job);
    }
}
