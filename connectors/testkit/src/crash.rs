//! Ways for a connector to die on purpose, for the isolation tests: a
//! scripted task whose fields carry `"crash": "<how>"` makes the connector
//! segfault, abort, overflow its stack, spin forever, leak memory without
//! bound or exit.

/// Dies the named way; an unknown name does nothing.
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
        _ => {}
    }
}

#[allow(unconditional_recursion)]
fn overflow(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 512]);
    overflow(depth + 1).wrapping_add(frame[0])
}
