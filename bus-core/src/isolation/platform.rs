//! Everything about connector processes that depends on the operating
//! system: how a connector host is started (in a process group of its
//! own, its stdin a socket), how the host makes its protocol streams
//! private (close-on-exec duplicates; stdin from `/dev/null`, stdout into
//! stderr), how the daemon passes the host a socket for one caller's calls
//! (`SCM_RIGHTS` on the stdin socket), how the host dies with the daemon
//! (the parent-death signal), its resource limits, and how the daemon ends
//! a host with everything it started (the group killed before the host is
//! reaped, so the group's ID cannot be reused in between).
//!
//! This is the Unix implementation. ARCHITECTURE.md ("Connector processes
//! on Windows") says what each function becomes there.

use super::Limits;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

/// The command that starts a connector host: its stdin is `requests` (the
/// host's end of a socket: the daemon's frames, and the call sockets passed
/// with them), its stdout the pipe of its frames, its stderr the output the
/// daemon logs; it leads a new process group, so whatever it starts is
/// ended with it.
fn host_command(program: &std::path::Path, subcommand: &str, requests: OwnedFd) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    command.arg(subcommand).stdin(Stdio::from(requests)).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    command
}

/// A connected pair of stream sockets, close-on-exec: the end kept, and
/// the end given away (to a host as its stdin, or passed to it for calls).
pub(super) fn socket_pair() -> std::io::Result<(UnixStream, OwnedFd)> {
    let (mine, theirs) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    Ok((UnixStream::from(mine), theirs))
}

/// Writes `bytes` on `stream` with `fd` attached: the host receives the
/// descriptor with the first of these bytes ([`FdInput`]).
pub(super) fn send_with_fd(stream: &UnixStream, bytes: &[u8], fd: &OwnedFd) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let sent = loop {
        match rustix::net::sendmsg(stream, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    // The descriptor went with the first byte; the rest is plain data.
    let mut rest = stream;
    rest.write_all(&bytes[sent..])
}

/// The host's protocol input: the daemon's frames, read with the
/// descriptors passed along with them (close-on-exec), which wait here
/// until the frame they came with asks for one ([`FdInput::take_fd`]).
pub(crate) struct FdInput {
    socket: OwnedFd,
    fds: VecDeque<OwnedFd>,
}

impl FdInput {
    /// The oldest descriptor received and not taken yet.
    pub(crate) fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }
}

impl Read for FdInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        // The kernel never merges data sent with descriptors into a read
        // of earlier data, so one read carries at most one passing.
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match rustix::net::recvmsg(&self.socket, &mut [IoSliceMut::new(buf)], &mut control, RecvFlags::CMSG_CLOEXEC)
            {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other?,
            }
        };
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                self.fds.extend(fds);
            }
        }
        Ok(got.bytes)
    }
}

/// The protocol streams of a connector host, private to it.
pub(crate) struct ProtocolStreams {
    pub input: FdInput,
    pub output: File,
}

/// Moves the protocol off the standard streams (host side): the frames are
/// read and written on close-on-exec duplicates; stdin becomes `/dev/null`
/// and stdout the stderr, so neither a program the connector starts nor a
/// connector's `println!` can read or corrupt a frame.
pub(crate) fn private_protocol_streams() -> std::io::Result<ProtocolStreams> {
    let input = rustix::io::fcntl_dupfd_cloexec(std::io::stdin(), 3)?;
    let output = rustix::io::fcntl_dupfd_cloexec(std::io::stdout(), 3)?;
    let null = File::open("/dev/null")?;
    rustix::stdio::dup2_stdin(&null)?;
    rustix::stdio::dup2_stdout(std::io::stderr())?;
    Ok(ProtocolStreams { input: FdInput { socket: input, fds: VecDeque::new() }, output: File::from(output) })
}

/// Arms the signal that ends the host when the daemon dies; `false` when
/// the daemon is gone already.
pub(crate) fn die_with_parent() -> bool {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    rustix::process::getppid().is_some_and(|p| p.as_raw_nonzero().get() != 1)
}

impl Limits {
    /// Applies the limits to this process (the connector host).
    pub(crate) fn apply(&self) {
        use rustix::process::{setrlimit, Resource, Rlimit};
        if let Some(mb) = self.memory_mb {
            let bytes = mb.saturating_mul(1024 * 1024);
            if let Err(e) = setrlimit(Resource::Data, Rlimit { current: Some(bytes), maximum: Some(bytes) }) {
                let _ = writeln!(std::io::stderr(), "cannot apply the memory limit of {mb} MB: {e}");
            }
        }
        if let Some(seconds) = self.cpu_seconds {
            if let Err(e) =
                setrlimit(Resource::Cpu, Rlimit { current: Some(seconds), maximum: Some(seconds.saturating_add(1)) })
            {
                let _ = writeln!(std::io::stderr(), "cannot apply the CPU limit of {seconds} s: {e}");
            }
        }
    }
}

/// A running connector host, as the daemon holds it.
pub(super) struct HostProcess {
    child: Child,
    /// The daemon's end of the host's stdin, until taken.
    requests: Option<UnixStream>,
    /// How it ended, once reaped.
    status: Option<std::process::ExitStatus>,
}

impl HostProcess {
    /// Starts `<program> <subcommand>` as a connector host.
    pub(super) fn spawn(program: &std::path::Path, subcommand: &str) -> std::io::Result<HostProcess> {
        let (requests, theirs) = socket_pair()?;
        // The command (and with it the host's end) is dropped right after
        // the start: only the host holds that end.
        let child = host_command(program, subcommand, theirs).spawn()?;
        Ok(HostProcess { child, requests: Some(requests), status: None })
    }

    /// The daemon's end of the host's stdin (the socket its frames and
    /// call sockets go to), once.
    pub(super) fn take_requests(&mut self) -> Option<UnixStream> {
        self.requests.take()
    }

    pub(super) fn id(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Whether the host has ended, without reaping it (its ID, and so its
    /// group's, stays reserved until [`HostProcess::end`]).
    pub(super) fn has_ended(&self) -> bool {
        use rustix::process::{waitid, WaitId, WaitIdOptions};
        if self.status.is_some() {
            return true;
        }
        let Some(pid) = self.pid() else { return true };
        match waitid(WaitId::Pid(pid), WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT) {
            Ok(status) => status.is_some(),
            // Not a child of ours any more: it has ended.
            Err(_) => true,
        }
    }

    /// Ends the host and every process of its group (what the connector
    /// started and left behind), reaps the host and says how it ended.
    pub(super) fn end(&mut self) -> std::io::Result<std::process::ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        if let Some(pid) = self.pid() {
            // Not reaped yet, so the group's ID is still this host's.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }

    fn pid(&self) -> Option<rustix::process::Pid> {
        i32::try_from(self.child.id()).ok().and_then(rustix::process::Pid::from_raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolation::frame::{self, Tag};
    use std::io::BufReader;

    #[test]
    fn sockets_passed_with_frames_arrive_in_order_with_them() {
        let (daemon, host) = socket_pair().unwrap();
        let mut input = BufReader::new(FdInput { socket: host, fds: VecDeque::new() });
        let mut kept = Vec::new();
        for n in 0..3u64 {
            let (mine, theirs) = socket_pair().unwrap();
            frame::write(&mut &daemon, Tag::HostReply, n, &[b"plain"]).unwrap();
            send_with_fd(&daemon, &frame::encode(Tag::Socket, n, &[]).unwrap(), &theirs).unwrap();
            kept.push(mine);
        }
        for (n, mine) in kept.iter().enumerate() {
            let plain = frame::read(&mut input).unwrap().unwrap();
            assert_eq!((plain.tag, plain.number), (Tag::HostReply, n as u64));
            let socket = frame::read(&mut input).unwrap().unwrap();
            assert_eq!((socket.tag, socket.number), (Tag::Socket, n as u64));
            let passed = UnixStream::from(input.get_mut().take_fd().expect("a socket came with the frame"));
            (&passed).write_all(format!("through {n}").as_bytes()).unwrap();
            let mut got = vec![0u8; format!("through {n}").len()];
            (&*mine).read_exact(&mut got).unwrap();
            assert_eq!(got, format!("through {n}").into_bytes(), "each socket reaches its own pair");
            let flags = rustix::io::fcntl_getfd(&passed).unwrap();
            assert!(flags.contains(rustix::io::FdFlags::CLOEXEC), "a passed socket is not inherited");
        }
        assert!(input.get_mut().take_fd().is_none());
    }
}
