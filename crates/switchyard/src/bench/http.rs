//! The load generator's own HTTP/1.1 client, in the spirit of wrk: one keep-alive
//! connection per simulated client, each request written into a reused buffer and its
//! response read by `Content-Length` (or chunks). The load generator shares the machine
//! with the server it measures, so what it spends per request is taken from the server:
//! reqwest's general machinery (URL and header maps, the pool, the redirect policy) cost
//! about as much CPU per request as the server's own HTTP handling.
//!
//! Plain `http://` only; `https://` targets go through reqwest (see [`super::Poster`]).

use std::io::Write;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes of one response this client reads (a batch answer of 1,000 tasks is
/// about 700 KB).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
const MAX_HEADERS: usize = 32;
const READ_CHUNK: usize = 16 * 1024;

/// `host:port` and path prefix (`""` or `/prefix`) of a plain-HTTP base URL, or `None`
/// for anything else.
pub fn plain_target(base: &str) -> Option<(&str, &str)> {
    let rest = base.strip_prefix("http://")?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    (!authority.is_empty()).then_some((authority, prefix.trim_end_matches('/')))
}

/// One keep-alive connection to the server under test.
pub struct Connection {
    stream: TcpStream,
    authority: String,
    auth: String,
    /// Bytes read and not yet handed out; the first `consumed` belong to the response
    /// returned last.
    buf: Vec<u8>,
    consumed: usize,
    /// The body of a chunked response, reassembled.
    chunked: Vec<u8>,
    /// The request being written.
    out: Vec<u8>,
    /// The server said it closes the connection after the last response.
    closing: bool,
}

/// A response: its status and its whole body.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

enum Framing {
    Length(usize),
    Chunked,
}

impl Connection {
    /// Connects to `authority` (`host:port`); every request carries `Authorization: Bearer key`.
    pub async fn connect(authority: &str, key: &str) -> anyhow::Result<Connection> {
        Ok(Connection {
            stream: open(authority).await?,
            authority: authority.to_owned(),
            auth: format!("Bearer {key}"),
            buf: Vec::with_capacity(READ_CHUNK),
            consumed: 0,
            chunked: Vec::new(),
            out: Vec::with_capacity(1024),
            closing: false,
        })
    }

    /// `POST path` with a JSON body; returns once the whole response is read.
    pub async fn post_json(&mut self, path: &str, body: &[u8]) -> anyhow::Result<Response<'_>> {
        if self.closing {
            self.stream = open(&self.authority).await?;
            self.buf.clear();
            self.consumed = 0;
            self.closing = false;
        }
        self.out.clear();
        write!(
            self.out,
            "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.authority,
            self.auth,
            body.len()
        )?;
        self.out.extend_from_slice(body);
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<Response<'_>> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        let (status, head_len, framing, closing) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buf)? {
                httparse::Status::Complete(head_len) => {
                    let status = response.code.context("a response without a status")?;
                    let (framing, closing) = framing(response.headers)?;
                    break (status, head_len, framing, closing);
                }
                httparse::Status::Partial if self.buf.len() > MAX_RESPONSE_BYTES => {
                    bail!("response head too large")
                }
                httparse::Status::Partial => self.fill().await?,
            }
        };
        self.closing = closing;
        match framing {
            Framing::Length(len) => {
                anyhow::ensure!(len <= MAX_RESPONSE_BYTES, "a response of {len} bytes");
                while self.buf.len() < head_len + len {
                    self.fill().await?;
                }
                self.consumed = head_len + len;
                Ok(Response {
                    status,
                    body: &self.buf[head_len..head_len + len],
                })
            }
            Framing::Chunked => {
                self.consumed = self.dechunk(head_len).await?;
                Ok(Response {
                    status,
                    body: &self.chunked,
                })
            }
        }
    }

    /// Reassembles a chunked body that starts at `pos` into `self.chunked`; returns
    /// where the response ends.
    async fn dechunk(&mut self, mut pos: usize) -> anyhow::Result<usize> {
        self.chunked.clear();
        loop {
            let line_end = self.line_end(pos).await?;
            let line = std::str::from_utf8(&self.buf[pos..line_end])?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .with_context(|| format!("bad chunk size {size_text:?}"))?;
            pos = line_end + 2;
            if size == 0 {
                // Trailer fields, then the empty line.
                loop {
                    let end = self.line_end(pos).await?;
                    let empty = end == pos;
                    pos = end + 2;
                    if empty {
                        return Ok(pos);
                    }
                }
            }
            anyhow::ensure!(
                self.chunked.len() + size <= MAX_RESPONSE_BYTES,
                "a chunked response over {MAX_RESPONSE_BYTES} bytes"
            );
            while self.buf.len() < pos + size + 2 {
                self.fill().await?;
            }
            anyhow::ensure!(
                &self.buf[pos + size..pos + size + 2] == b"\r\n",
                "a chunk not followed by CRLF"
            );
            self.chunked.extend_from_slice(&self.buf[pos..pos + size]);
            pos += size + 2;
        }
    }

    /// The position of the next `\r\n` at or after `from`, reading more as needed.
    async fn line_end(&mut self, from: usize) -> anyhow::Result<usize> {
        loop {
            if let Some(i) = self.buf[from.min(self.buf.len())..]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                return Ok(from + i);
            }
            anyhow::ensure!(self.buf.len() - from < 4096, "a chunk line too long");
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        self.buf.reserve(READ_CHUNK);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }
}

async fn open(authority: &str) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// How the body is delimited, and whether the server closes the connection after it.
fn framing(headers: &[httparse::Header<'_>]) -> anyhow::Result<(Framing, bool)> {
    let mut length = None;
    let mut chunked = false;
    let mut closing = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value)?.trim();
            length = Some(
                text.parse::<usize>()
                    .with_context(|| format!("bad content-length {text:?}"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = std::str::from_utf8(h.value)?
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            closing = std::str::from_utf8(h.value)?
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        // A response to a POST without either has no body only if it is 204/304; the
        // server under test always sends one of the two.
        (false, None) => bail!("a response with neither content-length nor chunked body"),
    };
    Ok((framing, closing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A server that answers each request with the next canned response, written in
    /// small pieces so that reads end mid-head and mid-body.
    async fn canned(responses: Vec<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for r in responses {
                // One request per response (they are small: one read each).
                let _ = socket.read(&mut buf).await.unwrap();
                for piece in r.chunks(7) {
                    socket.write_all(piece).await.unwrap();
                    socket.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_on_one_connection() {
        let addr = canned(vec![
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"id\":\"abc\"}\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 2\r\n\r\n{}",
        ])
        .await;
        let mut c = Connection::connect(&addr, "sy_key").await.unwrap();
        let r = c.post_json("/api/v1/tasks", b"{}").await.unwrap();
        assert_eq!((r.status, r.body), (201, &b"{\"id\":\"abc\"}\n"[..]));
        let r = c.post_json("/api/v1/tasks", b"{}").await.unwrap();
        assert_eq!((r.status, r.body), (200, &b"hello world"[..]));
        let r = c.post_json("/api/v1/tasks", b"{}").await.unwrap();
        assert_eq!((r.status, r.body), (422, &b"{}"[..]));
        // The server is gone: the next request fails instead of hanging.
        assert!(c.post_json("/api/v1/tasks", b"{}").await.is_err());
    }

    /// Bytes that arrive after a response (here the whole next response, sent early)
    /// are kept for the next request instead of being lost or misread.
    #[tokio::test]
    async fn bytes_after_a_response_belong_to_the_next() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(
                    b"HTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\none\
                             HTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\ntwo",
                )
                .await
                .unwrap();
            let _ = socket.read(&mut buf).await.unwrap();
        });
        let mut c = Connection::connect(&addr, "k").await.unwrap();
        assert_eq!(c.post_json("/x", b"1").await.unwrap().body, b"one");
        assert_eq!(c.post_json("/x", b"2").await.unwrap().body, b"two");
    }

    #[tokio::test]
    async fn malformed_responses_are_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\n\r\nno length"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"garbage\r\n\r\n",
        ] {
            let addr = canned(vec![bad]).await;
            let mut c = Connection::connect(&addr, "k").await.unwrap();
            assert!(
                c.post_json("/x", b"{}").await.is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_plain_http_bases_have_a_target() {
        assert_eq!(
            plain_target("http://127.0.0.1:8080"),
            Some(("127.0.0.1:8080", ""))
        );
        assert_eq!(plain_target("http://h:1/prefix/"), Some(("h:1", "/prefix")));
        assert_eq!(plain_target("https://h"), None);
        assert_eq!(plain_target("http://"), None);
    }
}
