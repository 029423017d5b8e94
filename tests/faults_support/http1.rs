//! Just enough HTTP/1.1 for the fault proxy ([`super::proxy`]): read one whole request (head,
//! then a body delimited by `Content-Length` or chunked encoding) from a client connection, and
//! rewrite a request or response head to `Connection: close`.
//!
//! What must stay true: the bytes returned for a request are exactly the bytes the client sent
//! (only the head is rewritten, by [`close_head`]); a malformed or oversized request is an error,
//! never a panic; nothing here interprets methods or paths.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (walstream's segments and snapshots in the tests are small;
/// multipart parts are 5 MiB at most).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One complete request as sent by the client.
pub struct Request {
    /// Head bytes including the final blank line.
    pub head: Vec<u8>,
    /// Body bytes exactly as sent (still chunk-encoded when chunked).
    pub body: Vec<u8>,
}

impl Request {
    /// The request line, for logs (`PUT /bucket/key HTTP/1.1`).
    pub fn line(&self) -> String {
        let end = find(&self.head, b"\r\n").unwrap_or(self.head.len());
        String::from_utf8_lossy(&self.head[..end]).into_owned()
    }
}

/// Reads one request; `Ok(None)` when the client closed the connection before sending anything.
pub async fn read_request<R: AsyncRead + Unpin>(conn: &mut R) -> io::Result<Option<Request>> {
    let mut buf = Vec::with_capacity(4096);
    let head_len = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("request head too large"));
        }
        if read_more(conn, &mut buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(bad("connection closed inside the request head"))
            };
        }
    };
    let mut body = buf.split_off(head_len);
    let head = buf;
    match framing(&head)? {
        Framing::Length(n) => {
            if n > MAX_BODY {
                return Err(bad("request body too large"));
            }
            while body.len() < n {
                if read_more(conn, &mut body).await? == 0 {
                    return Err(bad("connection closed inside the request body"));
                }
            }
            body.truncate(n);
        }
        Framing::Chunked => {
            while !chunked_complete(&body)? {
                if body.len() > MAX_BODY {
                    return Err(bad("request body too large"));
                }
                if read_more(conn, &mut body).await? == 0 {
                    return Err(bad("connection closed inside a chunked body"));
                }
            }
        }
    }
    Ok(Some(Request { head, body }))
}

/// Reads from `conn` until `buf` holds a whole response head; returns the head length, or
/// `None` when the connection ended first.
pub async fn read_head<R: AsyncRead + Unpin>(
    conn: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Ok(Some(i + 4));
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("response head too large"));
        }
        if read_more(conn, buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// `head` (a request or response head including its blank line) without `Connection` and
/// `Keep-Alive` headers and with `Connection: close`, so each connection carries one exchange.
pub fn close_head(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(head.len() + 24);
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

enum Framing {
    Length(usize),
    Chunked,
}

fn framing(head: &[u8]) -> io::Result<Framing> {
    let text = String::from_utf8_lossy(head);
    let mut length = 0;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            return Ok(Framing::Chunked);
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().map_err(|_| bad("invalid Content-Length"))?;
        }
    }
    Ok(Framing::Length(length))
}

/// True when `body` holds a complete chunked body (last chunk and trailers).
fn chunked_complete(body: &[u8]) -> io::Result<bool> {
    let mut pos = 0;
    loop {
        let Some(line_end) = find(&body[pos..], b"\r\n") else {
            return Ok(false);
        };
        let line = String::from_utf8_lossy(&body[pos..pos + line_end]);
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| bad("invalid chunk size line"))?;
        pos += line_end + 2;
        if size == 0 {
            // No trailers (an empty line right away) or trailers ending with an empty line.
            let rest = &body[pos..];
            return Ok(rest.starts_with(b"\r\n") || find(rest, b"\r\n\r\n").is_some());
        }
        if body.len() < pos + size + 2 {
            return Ok(false);
        }
        pos += size + 2;
    }
}

async fn read_more<R: AsyncRead + Unpin>(conn: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let n = conn.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_length_and_chunked_bodies() {
        let raw = b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        let req = read_request(&mut raw.as_slice())
            .await
            .expect("read")
            .expect("some");
        assert_eq!(req.body, b"hello");
        assert_eq!(req.line(), "PUT /b/k HTTP/1.1");
        let chunked =
            b"PUT /b/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                .to_vec();
        let req = read_request(&mut chunked.as_slice())
            .await
            .expect("read")
            .expect("some");
        assert_eq!(req.body, b"3\r\nabc\r\n0\r\n\r\n");
        let cut = b"PUT /b/k HTTP/1.1\r\nContent-Length: 9\r\n\r\nhel".to_vec();
        assert!(read_request(&mut cut.as_slice()).await.is_err());
        assert!(
            read_request(&mut [].as_slice())
                .await
                .expect("eof")
                .is_none()
        );
    }

    #[test]
    fn close_head_replaces_connection_headers() {
        let head = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        let out = String::from_utf8(close_head(head)).expect("utf-8");
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
}
