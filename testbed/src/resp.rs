//! A blocking Redis client for the two commands the backend sends, `GET` and `SET`, in RESP2
//! (the protocol every Redis speaks): arrays of bulk strings out, one reply back.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One connection to Redis, kept by one backend worker for its whole life.
pub struct Redis {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// A reply the backend cares about.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and other simple strings.
    Status(String),
    /// A bulk string (a value), or `None` for a missing key.
    Bulk(Option<Vec<u8>>),
}

impl Redis {
    pub fn connect(port: u16, timeout: Duration) -> io::Result<Redis> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Redis {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub fn get(&mut self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        match self.command(&[b"GET", key])? {
            Reply::Bulk(value) => Ok(value),
            other => Err(unexpected(&other)),
        }
    }

    pub fn set(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        match self.command(&[b"SET", key, value])? {
            Reply::Status(status) if status == "OK" => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn command(&mut self, parts: &[&[u8]]) -> io::Result<Reply> {
        self.writer.write_all(&encode(parts))?;
        read_reply(&mut self.reader)
    }
}

fn unexpected(reply: &Reply) -> io::Error {
    io::Error::other(format!("unexpected Redis reply {reply:?}"))
}

/// A command as a RESP array of bulk strings.
pub fn encode(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The largest value read back: a session's state is at most this (the scenario's session bytes
/// are checked against it before a run).
pub const MAX_VALUE: usize = 64 * 1024 * 1024;

/// Reads one reply: a simple string, an error (as `Err`) or a bulk string.
pub fn read_reply(reader: &mut impl BufRead) -> io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "Redis closed the connection",
        ));
    }
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Err(io::Error::other(format!("Redis error: {rest}"))),
        "$" => {
            let length: i64 = rest
                .parse()
                .map_err(|_| io::Error::other(format!("bad bulk length `{rest}`")))?;
            if length < 0 {
                return Ok(Reply::Bulk(None));
            }
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if length > MAX_VALUE {
                return Err(io::Error::other(format!("bulk of {length} bytes")));
            }
            let mut value = vec![0; length + 2];
            reader.read_exact(&mut value)?;
            value.truncate(length);
            Ok(Reply::Bulk(Some(value)))
        }
        _ => Err(io::Error::other(format!("unexpected Redis line `{line}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            encode(&[b"SET", b"s:1", b"xy"]),
            b"*3\r\n$3\r\nSET\r\n$3\r\ns:1\r\n$2\r\nxy\r\n"
        );
    }

    #[test]
    fn replies_are_read_whole() {
        let mut input: &[u8] = b"+OK\r\n$3\r\nabc\r\n$-1\r\n-ERR nope\r\n";
        assert_eq!(read_reply(&mut input).unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            read_reply(&mut input).unwrap(),
            Reply::Bulk(Some(b"abc".to_vec()))
        );
        assert_eq!(read_reply(&mut input).unwrap(), Reply::Bulk(None));
        assert!(read_reply(&mut input).is_err());
        assert!(read_reply(&mut input).is_err()); // end of input
    }
}
