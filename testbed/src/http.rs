//! Just enough HTTP/1.1 for the testbed: one request shape (`GET` with a few headers, no body) and
//! one response shape (a status, a few headers, no body), every connection closed after its
//! answer. Parsing is on bytes, shared by the blocking backend and the async load generator.

/// The most a request or response head may take; anything longer is refused.
pub const MAX_HEAD: usize = 16 * 1024;

/// A head's header lines, as (name, value) in order.
pub type Headers = Vec<(String, String)>;

/// A parsed request or response head: the first line's parts and the headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// A request's path with its query (`/r?s=12&i=0`), or a response's status code.
    pub target: String,
    pub status: u16,
    pub headers: Headers,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of query parameter `name` in a request's target.
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then_some(value)
        })
    }

    /// A response's `Set-Cookie: NAME=value` for `name`, if it sets one.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("set-cookie"))
            .find_map(|(_, value)| {
                let pair = value.split(';').next()?.trim();
                let (key, value) = pair.split_once('=')?;
                (key == name).then_some(value)
            })
    }

    /// A header's value as microseconds (the backend's timing headers).
    pub fn micros(&self, name: &str) -> Option<u64> {
        self.header(name)?.parse().ok()
    }
}

/// Where a head ends (the index after its blank line), if `bytes` holds all of it.
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the head is not UTF-8")]
    NotText,
    #[error("malformed first line `{0}`")]
    FirstLine(String),
    #[error("malformed header line `{0}`")]
    Header(String),
}

/// Parses a request head (`GET /path HTTP/1.1` and headers).
pub fn parse_request(bytes: &[u8]) -> Result<Head, ParseError> {
    let (first, headers) = split_head(bytes)?;
    let mut parts = first.split(' ');
    let (Some(_method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::FirstLine(first.to_string()));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ParseError::FirstLine(first.to_string()));
    }
    Ok(Head {
        target: target.to_string(),
        status: 0,
        headers,
    })
}

/// Parses a response head (`HTTP/1.1 200 OK` and headers).
pub fn parse_response(bytes: &[u8]) -> Result<Head, ParseError> {
    let (first, headers) = split_head(bytes)?;
    let status = first
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ParseError::FirstLine(first.to_string()))?;
    Ok(Head {
        target: String::new(),
        status,
        headers,
    })
}

fn split_head(bytes: &[u8]) -> Result<(&str, Headers), ParseError> {
    let end = head_end(bytes).unwrap_or(bytes.len());
    let text = std::str::from_utf8(&bytes[..end]).map_err(|_| ParseError::NotText)?;
    let mut lines = text.split("\r\n").filter(|line| !line.is_empty());
    let first = lines.next().unwrap_or_default();
    let headers = lines
        .map(|line| {
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError::Header(line.to_string()))?;
            Ok((key.trim().to_string(), value.trim().to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok((first, headers))
}

/// A response with no body, closing the connection, with `headers` added.
pub fn response(status: u16, headers: &[(&str, String)]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        410 => "Gone",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut text =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (key, value) in headers {
        text.push_str(&format!("{key}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_gives_its_query_and_headers() {
        let head = parse_request(b"GET /r?s=12&i=0 HTTP/1.1\r\nHost: t\r\nCookie: SRV=s1\r\n\r\n")
            .unwrap();
        assert_eq!(head.query("s"), Some("12"));
        assert_eq!(head.query("i"), Some("0"));
        assert_eq!(head.query("x"), None);
        assert_eq!(head.header("cookie"), Some("SRV=s1"));
    }

    #[test]
    fn a_response_head_gives_its_status_cookie_and_timings() {
        let bytes =
            b"HTTP/1.1 410 Gone\r\nset-cookie: SRV=s3; path=/\r\nX-Service-Us: 20113\r\n\r\n";
        let head = parse_response(bytes).unwrap();
        assert_eq!(head.status, 410);
        assert_eq!(head.set_cookie("SRV"), Some("s3"));
        assert_eq!(head.micros("x-service-us"), Some(20113));
        assert_eq!(head_end(bytes), Some(bytes.len()));
    }

    #[test]
    fn what_we_write_we_read() {
        let bytes = response(503, &[("X-Reason", "rejected".into())]);
        let head = parse_response(&bytes).unwrap();
        assert_eq!(head.status, 503);
        assert_eq!(head.header("x-reason"), Some("rejected"));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse_request(b"HELLO\r\n\r\n").is_err());
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_request(b"GET / HTTP/1.1\r\nno colon\r\n\r\n").is_err());
        assert!(parse_request(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']).is_err());
    }
}
