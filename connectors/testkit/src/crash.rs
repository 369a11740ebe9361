//! Ways for a connector to die or misbehave on purpose, for the isolation
//! tests: a scripted task whose fields carry `"crash": "<how>"` makes the
//! connector segfault, abort, overflow its stack, spin forever, leak memory
//! without bound or exit; or leave a process behind and exit
//! (`orphan:<sleep argument>`), start a process that reads its stdin
//! (`stdin-thief`), or write to stderr without a newline
//! (`flood:<bytes>`) or line by line (`flood-lines:<lines>`) and go on.

use std::io::Write;

/// Dies (or misbehaves) the named way; an unknown name does nothing.
pub fn crash(how: &str) {
    match how {
        "segfault" => {
            // SAFETY: none, on purpose: this writes through a null pointer
            // so the process gets SIGSEGV, which is what the test wants.
            unsafe { std::ptr::null_mut::<u8>().write_volatile(1) }
        }
        "abort" => std::process::abort(),
        "overflow" => {
            std::hint::black_box(overflow(0));
        }
        "spin" => loop {
            std::hint::spin_loop();
        },
        "leak" => {
            let mut kept: Vec<Vec<u8>> = Vec::new();
            loop {
                // Touched, so the pages are really used.
                kept.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&kept);
            }
        }
        "exit" => std::process::exit(3),
        "stdin-thief" => {
            // Inherits stdin: a host that kept the protocol there would
            // lose its call frames to it.
            let _ = std::process::Command::new("cat").stdout(std::process::Stdio::null()).spawn();
        }
        other => {
            if let Some(arg) = other.strip_prefix("orphan:") {
                // Left behind with whatever the host lets it inherit.
                let _ = std::process::Command::new("sleep").arg(arg).spawn();
                std::process::exit(3);
            }
            if let Some(bytes) = other.strip_prefix("flood:").and_then(|n| n.parse::<usize>().ok()) {
                flood(bytes);
            }
            if let Some(lines) = other.strip_prefix("flood-lines:").and_then(|n| n.parse::<usize>().ok()) {
                let mut err = std::io::stderr().lock();
                for i in 0..lines {
                    let _ = writeln!(err, "flood line {i}");
                }
            }
        }
    }
}

/// `bytes` bytes to stderr without a newline.
fn flood(bytes: usize) {
    let chunk = [b'x'; 64 * 1024];
    let mut err = std::io::stderr().lock();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        if err.write_all(&chunk[..n]).is_err() {
            return;
        }
        left -= n;
    }
}

#[allow(unconditional_recursion)]
fn overflow(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 512]);
    overflow(depth + 1).wrapping_add(frame[0])
}
