//! The load client every benchmark shares: a lean HTTP/1.1 keep-alive connection and a lean
//! WebSocket connection, straight on a `TcpStream`. The client shares the machine's two cores
//! with the server it measures, so it must cost little per request and per message; it parses
//! only what it needs, and the same client drives Hawker and every baseline.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connects from `source` (one of several 127.0.0.x, so tens of thousands of sockets do not run
/// out of ephemeral ports on one address pair) to `server`.
pub async fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The `n`-th of `spread` loopback source addresses: 127.0.0.2, 127.0.0.3, …
pub fn loopback_source(n: usize, spread: usize) -> IpAddr {
    IpAddr::from([127, 0, 0, 2 + (n % spread.clamp(1, 250)) as u8])
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP/1.1 connection, kept alive across requests.
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
    request: Vec<u8>,
}

pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpConn {
    pub async fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<Self> {
        Ok(Self {
            stream: connect(server, source).await?,
            buf: Vec::with_capacity(2048),
            request: Vec::with_capacity(512),
        })
    }

    /// Sends one request and reads the whole answer (bodies must carry `Content-Length`).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        use std::io::Write;
        self.request.clear();
        write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        )?;
        for (name, value) in headers {
            write!(self.request, "{name}: {value}\r\n")?;
        }
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(body);
        self.stream.write_all(&self.request).await?;

        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| bad("bad head"))?;
        let status = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .ok_or_else(|| bad("no Content-Length"))?;
        while self.buf.len() < head_end + length {
            self.read_more().await?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        Ok(HttpResponse { status, body })
    }

    async fn read_more(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// A WebSocket frame as received (the server's frames are never masked).
pub struct Frame<'a> {
    pub opcode: u8,
    pub payload: &'a [u8],
}

pub const TEXT: u8 = 1;
pub const CLOSE: u8 = 8;
pub const PING: u8 = 9;
pub const PONG: u8 = 10;

/// One WebSocket connection with a small, reused read buffer.
pub struct WsConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of unread bytes in `buf`, and of the frame returned last (consumed on the next read).
    start: usize,
    consumed: usize,
}

impl WsConn {
    /// Opens `path` on `server` with the upgrade handshake; `headers` go with it (a bearer token).
    pub async fn connect(
        server: SocketAddr,
        source: Option<IpAddr>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Self> {
        use std::io::Write;
        let mut stream = connect(server, source).await?;
        let mut request = Vec::with_capacity(256);
        write!(
            request,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        )?;
        for (name, value) in headers {
            write!(request, "{name}: {value}\r\n")?;
        }
        request.extend_from_slice(b"\r\n");
        stream.write_all(&request).await?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 2048];
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            let line = String::from_utf8_lossy(&buf[..head_end.min(64)]).into_owned();
            return Err(bad(format!("upgrade refused: {line}")));
        }
        buf.drain(..head_end);
        Ok(Self {
            stream,
            buf,
            start: 0,
            consumed: 0,
        })
    }

    /// The next frame. Its payload borrows the connection's buffer until the next call.
    /// Cancel-safe: dropping the future loses no bytes.
    pub async fn next(&mut self) -> io::Result<Frame<'_>> {
        self.start = self.consumed;
        loop {
            let unread = &self.buf[self.start..];
            if let Some((opcode, header, len)) = parse_header(unread)
                && unread.len() >= header + len
            {
                let from = self.start + header;
                self.consumed = from + len;
                return Ok(Frame {
                    opcode,
                    payload: &self.buf[from..from + len],
                });
            }
            // Keep the buffer small: move the partial frame to the front, then read more.
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
                self.consumed = 0;
            }
            // Read into a chunk, then keep it: dropped mid-read (a `select!` that took another
            // branch), the buffer is as it was.
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one masked text frame (a client must mask; the key need not be secret here).
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(TEXT, text.as_bytes()).await
    }

    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mask = [0x5a, 0x17, 0xc3, 0x8e];
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65_536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await
    }
}

/// `(opcode, header length, payload length)` if the header is complete.
fn parse_header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut header) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
        127 => {
            let bytes: [u8; 8] = b.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if masked {
        header += 4;
    }
    Some((b0 & 0x0f, header, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers() {
        assert_eq!(parse_header(&[0x81, 5]), Some((TEXT, 2, 5)));
        assert_eq!(parse_header(&[0x81, 126, 1, 0]), Some((TEXT, 4, 256)));
        assert_eq!(parse_header(&[0x81, 126, 1]), None);
        assert_eq!(parse_header(&[0x88]), None);
    }
}
