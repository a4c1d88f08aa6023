//! Host names resolved off the event loop (the system resolver blocks): at
//! most [`MAX_LOOKUPS`] at once, each on a short-lived thread, the others
//! waiting in a queue of at most [`MAX_QUEUED`] (beyond it a lookup fails at
//! once). Answers come back on a channel, and the loop is woken for them.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

/// Lookups running at once.
pub const MAX_LOOKUPS: usize = 2;
/// Lookups waiting for a turn.
pub const MAX_QUEUED: usize = 64;

/// A lookup's answer: its token and the addresses (or why there are none).
pub type Answer = (u64, Result<Vec<SocketAddr>, String>);

pub struct Resolver {
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    queue: VecDeque<(u64, String, u16)>,
    active: Arc<AtomicUsize>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Resolver {
    /// `wake` is called (on a lookup's thread) when an answer is ready.
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Resolver {
        let (tx, rx) = crossbeam_channel::unbounded();
        Resolver {
            tx,
            rx,
            queue: VecDeque::new(),
            active: Arc::new(AtomicUsize::new(0)),
            wake: Arc::new(wake),
        }
    }

    /// Asks for `host`'s addresses; the answer carries `token`.
    pub fn resolve(&mut self, token: u64, host: String, port: u16) {
        if self.queue.len() >= MAX_QUEUED {
            let _ = self.tx.send((token, Err("too many names waiting".into())));
            (self.wake)();
            return;
        }
        self.queue.push_back((token, host, port));
        self.start();
    }

    fn start(&mut self) {
        while self.active.load(Ordering::SeqCst) < MAX_LOOKUPS {
            let Some((token, host, port)) = self.queue.pop_front() else {
                return;
            };
            self.active.fetch_add(1, Ordering::SeqCst);
            let (tx, active, wake) = (self.tx.clone(), self.active.clone(), self.wake.clone());
            let spawned = std::thread::Builder::new()
                .name("hazel-resolve".into())
                .spawn(move || {
                    let answer = (host.as_str(), port)
                        .to_socket_addrs()
                        .map(|addrs| addrs.take(16).collect())
                        .map_err(|e| e.to_string());
                    let _ = tx.send((token, answer));
                    active.fetch_sub(1, Ordering::SeqCst);
                    wake();
                });
            if let Err(e) = spawned {
                self.active.fetch_sub(1, Ordering::SeqCst);
                let _ = self
                    .tx
                    .send((token, Err(format!("no thread for the lookup: {e}"))));
            }
        }
    }

    /// The answers ready now (and the next lookups started).
    pub fn answers(&mut self) -> Vec<Answer> {
        let ready: Vec<Answer> = self.rx.try_iter().collect();
        self.start();
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn names_resolve_off_the_caller_and_the_queue_is_bounded() {
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        let mut r = Resolver::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        r.resolve(1, "localhost".into(), 6346);
        r.resolve(2, "127.0.0.1".into(), 80);
        r.resolve(3, "no such host .invalid".into(), 1);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 3 && Instant::now() < deadline {
            got.extend(r.answers());
            std::thread::sleep(Duration::from_millis(10));
        }
        got.sort_by_key(|(t, _)| *t);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0]
            .1
            .as_ref()
            .is_ok_and(|a| a.iter().any(|a| a.port() == 6346)));
        assert_eq!(got[1].1, Ok(vec!["127.0.0.1:80".parse().unwrap()]));
        assert!(got[2].1.is_err());
        assert!(woken.load(Ordering::SeqCst) >= 3);
        for t in 0..(MAX_QUEUED as u64 + 10) {
            r.queue.push_back((1000 + t, "127.0.0.1".into(), 1));
        }
        r.resolve(9999, "127.0.0.1".into(), 1);
        let refused =
            r.rx.recv_timeout(Duration::from_secs(5))
                .expect("an answer");
        assert_eq!(refused.0, 9999);
        assert!(refused.1.is_err());
    }
}
