//! The frames the daemon and a connector host exchange over the child's
//! stdin and stdout and over the sockets for calls: a little-endian `u32`
//! length (of what follows), a tag byte, a little-endian `u64` number, and
//! the body. Bodies are the same request and response documents the
//! in-process path passes (JSON), so the child adds framing, not a second
//! protocol.

use std::io::{self, Read, Write};

/// The largest frame accepted (a task payload is far smaller).
const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    /// Daemon → host: open the library and create the class (JSON [`super::OpenRequest`]).
    Open = 1,
    /// Host → daemon: the answer to `Open` (JSON [`super::OpenAnswer`]).
    Opened = 2,
    /// Daemon → host, on a call socket: a request document for the
    /// connector; the number names the call.
    Call = 3,
    /// Host → daemon: the answer to a call, on the socket the call came on
    /// ([`Outcome`] byte, then the response document or the error text),
    /// or to `Shutdown` on stdout.
    Reply = 4,
    /// Host → daemon: a host request the connector made (8 bytes: the
    /// call it was made during, 0 for none; then the request document).
    HostCall = 5,
    /// Daemon → host: the answer to a host request (the response document).
    HostReply = 6,
    /// Daemon → host: call the connector's shutdown, then exit.
    Shutdown = 7,
    /// Daemon → host: a `Call` that must start by a moment (8 bytes: a
    /// [`crate::start_by::StartBy`]; then the request document): past it
    /// the host answers [`Outcome::NotStarted`] without calling.
    CallBy = 8,
    /// Daemon → host, on stdin, with a socket passed along (`SCM_RIGHTS`):
    /// the socket one caller sends its calls on, one at a time, and gets
    /// their replies from (empty body).
    Socket = 9,
}

impl Tag {
    fn from_byte(b: u8) -> Option<Tag> {
        Some(match b {
            1 => Tag::Open,
            2 => Tag::Opened,
            3 => Tag::Call,
            4 => Tag::Reply,
            5 => Tag::HostCall,
            6 => Tag::HostReply,
            7 => Tag::Shutdown,
            8 => Tag::CallBy,
            9 => Tag::Socket,
            _ => return None,
        })
    }
}

/// The first byte of a `Reply` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Outcome {
    /// The connector answered; the response document follows.
    Answered = 0,
    /// The call failed before an answer (a panic caught by the SDK); the
    /// error text follows.
    Failed = 1,
    /// The call was not made: its start deadline had passed when the frame
    /// arrived (8 bytes: by how many nanoseconds).
    NotStarted = 2,
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub tag: Tag,
    pub number: u64,
    pub body: Vec<u8>,
}

#[cfg(test)]
impl Frame {
    fn new(tag: Tag, number: u64, body: Vec<u8>) -> Frame {
        Frame { tag, number, body }
    }
}

/// Writes one frame in one `write_all` (header and body together), so
/// frames written from several threads under one lock never interleave.
pub(crate) fn write(out: &mut impl Write, tag: Tag, number: u64, parts: &[&[u8]]) -> io::Result<()> {
    out.write_all(&encode(tag, number, parts)?)?;
    out.flush()
}

/// One frame's bytes; `InvalidInput` when it is over the limit.
pub(crate) fn encode(tag: Tag, number: u64, parts: &[&[u8]]) -> io::Result<Vec<u8>> {
    let len: usize = 1 + 8 + parts.iter().map(|p| p.len()).sum::<usize>();
    let len = u32::try_from(len).ok().filter(|l| *l <= MAX_FRAME).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("a frame of {len} bytes is over the limit"))
    })?;
    let mut buf = Vec::with_capacity(4 + len as usize);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.push(tag as u8);
    buf.extend_from_slice(&number.to_le_bytes());
    for p in parts {
        buf.extend_from_slice(p);
    }
    Ok(buf)
}

/// What a frame's first 13 bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub tag: Tag,
    pub number: u64,
    /// The length of the body that follows.
    pub body_len: usize,
}

/// Reads one frame; `Ok(None)` at a clean end of the stream.
pub(crate) fn read(input: &mut impl Read) -> io::Result<Option<Frame>> {
    let Some(header) = read_header(input)? else { return Ok(None) };
    let body = read_body(input, &header)?;
    Ok(Some(Frame { tag: header.tag, number: header.number, body }))
}

/// Reads a frame's header, so the reader can decide whether to read the
/// body ([`read_body`]) or pass over it ([`skip_body`]) before a byte of
/// it is held; `Ok(None)` at a clean end of the stream.
pub(crate) fn read_header(input: &mut impl Read) -> io::Result<Option<Header>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if !(9..=MAX_FRAME).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame length of {len} bytes")));
    }
    let mut head = [0u8; 9];
    input.read_exact(&mut head)?;
    let tag = Tag::from_byte(head[0])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("an unknown frame tag {}", head[0])))?;
    let number = u64::from_le_bytes(head[1..9].try_into().expect("eight bytes"));
    Ok(Some(Header { tag, number, body_len: len as usize - 9 }))
}

/// Reads the body of the frame whose header was just read.
pub(crate) fn read_body(input: &mut impl Read, header: &Header) -> io::Result<Vec<u8>> {
    let mut body = vec![0u8; header.body_len];
    input.read_exact(&mut body)?;
    Ok(body)
}

/// Passes over the body of the frame whose header was just read, holding
/// at most a small buffer of it.
pub(crate) fn skip_body(input: &mut impl Read, header: &Header) -> io::Result<()> {
    let wanted = header.body_len as u64;
    let skipped = io::copy(&mut input.take(wanted), &mut io::sink())?;
    if skipped < wanted {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a frame cut short"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_stream_is_an_error() {
        let mut wire = Vec::new();
        write(&mut wire, Tag::Call, 7, &[b"{\"kind\":", b"\"init\"}"]).unwrap();
        write(&mut wire, Tag::Shutdown, 0, &[]).unwrap();
        let mut input = wire.as_slice();
        assert_eq!(read(&mut input).unwrap(), Some(Frame::new(Tag::Call, 7, b"{\"kind\":\"init\"}".to_vec())));
        assert_eq!(read(&mut input).unwrap(), Some(Frame::new(Tag::Shutdown, 0, Vec::new())));
        assert_eq!(read(&mut input).unwrap(), None);
        let torn = &wire[..wire.len() - 3];
        let mut input = torn;
        read(&mut input).unwrap();
        assert!(read(&mut input).is_err(), "a frame cut short is not a clean end");
        let mut bad = &[9u8, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0][..];
        assert!(read(&mut bad).is_err(), "an unknown tag");
        let mut short = &[5u8, 0, 0, 0, 3, 0, 0, 0, 0][..];
        assert!(read(&mut short).is_err(), "a length shorter than a header");
    }

    #[test]
    fn a_body_is_passed_over_without_being_read() {
        let mut wire = Vec::new();
        write(&mut wire, Tag::Reply, 3, &[&[7u8; 10_000]]).unwrap();
        write(&mut wire, Tag::Reply, 4, &[b"ok"]).unwrap();
        let mut input = wire.as_slice();
        let header = read_header(&mut input).unwrap().unwrap();
        assert_eq!((header.tag, header.number, header.body_len), (Tag::Reply, 3, 10_000));
        skip_body(&mut input, &header).unwrap();
        assert_eq!(read(&mut input).unwrap(), Some(Frame::new(Tag::Reply, 4, b"ok".to_vec())));
        let mut torn = &wire[..13 + 100];
        let header = read_header(&mut torn).unwrap().unwrap();
        assert!(skip_body(&mut torn, &header).is_err(), "a body cut short is an error");
    }
}
