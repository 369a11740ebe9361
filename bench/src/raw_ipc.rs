//! The raw limit of a call into another process on this machine: a caller
//! and an echo process that answers each message on a Unix socket (the
//! transport of a connector process's calls), one message at a time per
//! pair, several pairs at once (one per connector of the end-to-end rig).

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The subcommand the bench binary answers as the echo process.
pub const ECHO_COMMAND: &str = "raw-echo";

/// The size of one message (a small request document).
const MESSAGE: usize = 256;

/// The echo process: answers every message on stdin (a socket) with itself.
pub fn echo() -> Result<()> {
    let mut socket = UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut buf = [0u8; MESSAGE];
    loop {
        match socket.read_exact(&mut buf) {
            Ok(()) => socket.write_all(&buf)?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Round trips per second per pair, with `pairs` pairs of a caller thread
/// and an echo process running at once, `count` round trips each.
pub fn round_trips(pairs: usize, count: u64) -> Result<f64> {
    let program = std::env::current_exe()?;
    let mut children = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..pairs {
        let (mine, theirs) = UnixStream::pair()?;
        let child = Command::new(&program)
            .arg(ECHO_COMMAND)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .spawn()
            .context("cannot start the echo process")?;
        children.push(child);
        sockets.push(mine);
    }
    let start = Instant::now();
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let threads: Vec<_> = sockets
            .iter_mut()
            .map(|socket| {
                scope.spawn(move || -> Result<()> {
                    let mut buf = [7u8; MESSAGE];
                    for _ in 0..count {
                        socket.write_all(&buf)?;
                        socket.read_exact(&mut buf)?;
                    }
                    Ok(())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap_or_else(|_| bail!("a caller thread panicked"))).collect()
    });
    let elapsed = start.elapsed();
    drop(sockets);
    for mut child in children {
        child.wait()?;
    }
    results.into_iter().collect::<Result<()>>()?;
    Ok(count as f64 / elapsed.as_secs_f64())
}
