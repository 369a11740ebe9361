//! Everything about connector processes that depends on the operating
//! system, behind five functions: how a connector host is started (in a
//! process group of its own), how the host makes its protocol streams
//! private (close-on-exec duplicates; stdin from `/dev/null`, stdout into
//! stderr), how it dies with the daemon (the parent-death signal), its
//! resource limits, and how the daemon ends a host with everything it
//! started (the group killed before the host is reaped, so the group's ID
//! cannot be reused in between).
//!
//! This is the Unix implementation. ARCHITECTURE.md ("Connector processes
//! on Windows") says what each function becomes there.

use super::Limits;
use std::fs::File;
use std::io::Write;
use std::process::{Child, Command, Stdio};

/// The command that starts a connector host: its stdin and stdout are the
/// protocol pipes, its stderr the output the daemon logs; it leads a new
/// process group, so whatever it starts is ended with it.
pub(super) fn host_command(program: &std::path::Path, subcommand: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    command.arg(subcommand).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    command
}

/// The protocol streams of a connector host, private to it.
pub(crate) struct ProtocolStreams {
    pub input: File,
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
    Ok(ProtocolStreams { input: File::from(input), output: File::from(output) })
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
    /// How it ended, once reaped.
    status: Option<std::process::ExitStatus>,
}

impl HostProcess {
    pub(super) fn spawn(command: &mut Command) -> std::io::Result<HostProcess> {
        Ok(HostProcess { child: command.spawn()?, status: None })
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
