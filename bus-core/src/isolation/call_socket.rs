//! One caller's socket to a connector process: the daemon thread that
//! makes a call writes it here and reads the reply itself, and one thread
//! of the host reads it and answers on the same socket — two wake-ups per
//! call, no thread of either side in between. The supervisor keeps a pool
//! of them per process (a socket per call in flight at most), made and
//! passed to the host on demand (`platform::send_with_fd`).

use super::frame::{self, Tag};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Why a call on a socket got no reply frame.
#[derive(Debug)]
pub(super) enum SocketError {
    /// The request could not be framed (over the frame limit); nothing was
    /// sent and the socket is fine.
    Unsendable(String),
    /// The reply is over `max` bytes: passed over unread; the socket is fine.
    Oversized(usize),
    /// No reply by the deadline.
    TimedOut,
    /// The host's end is gone (the process ended, or closed the socket).
    Closed,
    /// The host sent something that is not a frame.
    Garbled(String),
}

/// A socket to a connector process for one call at a time.
pub(super) struct CallSocket {
    input: BufReader<ByDeadline>,
}

/// Reads the socket until a deadline: the socket's read timeout is set
/// only when the one set last is off the time left by more than [`SLACK`]
/// either way (so calls with the same timeout cost no extra system call,
/// and a socket whose last read ended near its deadline gets its timeout
/// back).
struct ByDeadline {
    stream: UnixStream,
    deadline: Instant,
    timeout_set: Option<Duration>,
}

/// How far past its deadline a read may wait before its timeout is set anew.
const SLACK: Duration = Duration::from_millis(10);

/// How long one write waits for room in the socket before the deadline is
/// looked at again (set once per socket: a request that fits the socket's
/// buffer, nearly all, costs no extra system call).
const WRITE_POLL: Duration = Duration::from_millis(10);

impl Read for ByDeadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            if self.timeout_set.is_none_or(|set| set > left + SLACK || left > set + SLACK) {
                self.stream.set_read_timeout(Some(left))?;
                self.timeout_set = Some(left);
            }
            match self.stream.read(buf) {
                // The timeout set may be shorter than what is left: the
                // deadline decides.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue
                }
                other => return other,
            }
        }
    }
}

impl CallSocket {
    pub(super) fn new(stream: UnixStream) -> CallSocket {
        // (Without it a write to a host that stopped reading waits as long
        // as the host does: the deadline below still ends the call when
        // the host reads slowly, and the process is killed as for any
        // call past its deadline.)
        if let Err(e) = stream.set_write_timeout(Some(WRITE_POLL)) {
            tracing::warn!(error = %e, "a call socket's write timeout could not be set");
        }
        CallSocket { input: BufReader::new(ByDeadline { stream, deadline: Instant::now(), timeout_set: None }) }
    }

    /// Sends the call `number` (a `tag` frame of `parts`) and returns the
    /// body of its reply, waiting at most `timeout`; a reply body over
    /// `max` bytes is passed over unread.
    pub(super) fn call(
        &mut self,
        tag: Tag,
        number: u64,
        parts: &[&[u8]],
        timeout: Duration,
        max: usize,
    ) -> Result<Vec<u8>, SocketError> {
        let bytes = frame::encode(tag, number, parts).map_err(|e| SocketError::Unsendable(e.to_string()))?;
        // A timeout past any real deadline (a huge setting) is a year.
        let now = Instant::now();
        self.input.get_mut().deadline =
            now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        write_by(&self.input.get_ref().stream, &bytes, self.input.get_ref().deadline)?;
        let header = match frame::read_header(&mut self.input) {
            Ok(Some(header)) => header,
            Ok(None) => return Err(SocketError::Closed),
            Err(e) => return Err(read_error(e)),
        };
        if header.tag != Tag::Reply || header.number != number {
            // Only this call's reply comes on its socket.
            return Err(SocketError::Garbled(format!("a {:?} frame on a call socket", header.tag)));
        }
        if header.body_len > max {
            frame::skip_body(&mut self.input, &header).map_err(read_error)?;
            return Err(SocketError::Oversized(header.body_len));
        }
        frame::read_body(&mut self.input, &header).map_err(read_error)
    }
}

/// Writes `bytes` by `deadline`: a host that stopped reading (frozen, or
/// its thread stuck) fills the socket's buffer, and the call then ends at
/// its deadline like one that gets no reply.
fn write_by(stream: &UnixStream, bytes: &[u8], deadline: Instant) -> Result<(), SocketError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        // (Before every write: a host that takes a little at a time does
        // not stretch the call either.)
        if Instant::now() >= deadline {
            return Err(SocketError::TimedOut);
        }
        match (&mut &*stream).write(rest) {
            Ok(0) => return Err(SocketError::Closed),
            Ok(n) => rest = &rest[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => return Err(SocketError::Closed),
        }
    }
    Ok(())
}

fn read_error(e: std::io::Error) -> SocketError {
    match e.kind() {
        ErrorKind::TimedOut => SocketError::TimedOut,
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => SocketError::Closed,
        _ => SocketError::Garbled(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolation::frame::Frame;

    /// A call socket and the host's end of it.
    fn pair() -> (CallSocket, UnixStream) {
        let (mine, theirs) = UnixStream::pair().unwrap();
        (CallSocket::new(mine), theirs)
    }

    /// Answers the next call on `host` with `tag`, `number` and `body`.
    fn answer(host: &UnixStream, tag: Tag, number: Option<u64>, body: Vec<u8>) -> std::thread::JoinHandle<Frame> {
        let host = host.try_clone().unwrap();
        std::thread::spawn(move || {
            let call = frame::read(&mut &host).unwrap().unwrap();
            frame::write(&mut &host, tag, number.unwrap_or(call.number), &[&body]).unwrap();
            call
        })
    }

    #[test]
    fn a_call_gets_its_reply_and_the_socket_serves_the_next_one() {
        let (mut socket, host) = pair();
        for n in 1..=3u64 {
            let served = answer(&host, Tag::Reply, None, format!("answer {n}").into_bytes());
            let body = socket.call(Tag::Call, n, &[b"request"], Duration::from_secs(5), 1 << 20).unwrap();
            assert_eq!(body, format!("answer {n}").into_bytes());
            let call = served.join().unwrap();
            assert_eq!((call.tag, call.number, call.body), (Tag::Call, n, b"request".to_vec()));
        }
    }

    #[test]
    fn a_timeout_past_any_clock_waits_for_the_reply_without_a_panic() {
        let (mut socket, host) = pair();
        let served = answer(&host, Tag::Reply, None, b"ok".to_vec());
        assert_eq!(socket.call(Tag::Call, 1, &[b"x"], Duration::MAX, 1 << 20).unwrap(), b"ok");
        served.join().unwrap();
    }

    #[test]
    fn no_reply_by_the_deadline_times_out_and_a_closed_end_is_closed() {
        let (mut socket, host) = pair();
        let started = Instant::now();
        let result = socket.call(Tag::Call, 1, &[b"x"], Duration::from_millis(150), 1 << 20);
        assert!(matches!(result, Err(SocketError::TimedOut)), "{result:?}");
        assert!(started.elapsed() >= Duration::from_millis(150), "not before the deadline");
        assert!(started.elapsed() < Duration::from_secs(5), "not long after it");
        drop(host);
        let result = socket.call(Tag::Call, 2, &[b"x"], Duration::from_secs(5), 1 << 20);
        assert!(matches!(result, Err(SocketError::Closed)), "{result:?}");
    }

    /// A host that stopped reading: a request larger than the socket's
    /// buffer cannot be written whole, and the call still ends at its
    /// deadline (the supervisor then kills the process).
    #[test]
    fn a_request_to_a_host_that_reads_nothing_times_out_at_the_deadline() {
        let (mut socket, host) = pair();
        let request = vec![b'x'; 16 << 20];
        let started = Instant::now();
        let result = socket.call(Tag::Call, 1, &[&request], Duration::from_millis(200), 1 << 20);
        assert!(matches!(result, Err(SocketError::TimedOut)), "{result:?}");
        assert!(started.elapsed() >= Duration::from_millis(200), "not before the deadline");
        assert!(started.elapsed() < Duration::from_secs(5), "not long after it: {:?}", started.elapsed());
        drop(host);
    }

    #[test]
    fn an_oversized_reply_is_passed_over_and_a_wrong_frame_is_garbled() {
        let (mut socket, host) = pair();
        let served = answer(&host, Tag::Reply, None, vec![9u8; 5_000]);
        let result = socket.call(Tag::Call, 1, &[b"x"], Duration::from_secs(5), 1_000);
        assert!(matches!(result, Err(SocketError::Oversized(5_000))), "{result:?}");
        served.join().unwrap();
        // The socket is still in step: the next call gets its own reply.
        let served = answer(&host, Tag::Reply, None, b"fine".to_vec());
        assert_eq!(socket.call(Tag::Call, 2, &[b"x"], Duration::from_secs(5), 1_000).unwrap(), b"fine");
        served.join().unwrap();
        let served = answer(&host, Tag::Reply, Some(99), b"someone else's".to_vec());
        let result = socket.call(Tag::Call, 3, &[b"x"], Duration::from_secs(5), 1_000);
        assert!(matches!(result, Err(SocketError::Garbled(_))), "{result:?}");
        served.join().unwrap();
    }
}
