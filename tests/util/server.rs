//! A `medvec serve` child process and a minimal HTTP/1.1 client for the API tests.

use super::{medvec_bin, s};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub token: String,
    /// `http` or `https`, from the start-up line.
    pub scheme: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `medvec serve STORE --port 0`, waiting for its start-up line; it must be on loopback.
pub fn start(store: &Path) -> Server {
    let server = start_with(store, &[]);
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    server
}

/// [`start`] with more arguments.
pub fn start_with(store: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(medvec_bin())
        .args(["serve", s(store), "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("medvec serve: ")
        .unwrap_or_else(|| panic!("start-up line: {line:?}"));
    let (scheme, rest) = url.split_once("://").unwrap();
    let (addr, token) = rest.split_once("/?token=").unwrap();
    Server {
        child,
        // Listening on every interface: connect through loopback.
        addr: addr.replace("0.0.0.0:", "127.0.0.1:"),
        token: token.to_string(),
        scheme: scheme.to_string(),
    }
}

/// A response: status, headers (lower-case names) and body (as text, and as bytes).
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close` and a JSON body (if any), read to the end.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let content_type = (!body.is_empty()).then_some("application/json");
    request_bytes(addr, method, path, headers, body.as_bytes(), content_type)
}

/// [`request`] with any body. The body is written on its own thread, so a server that answers
/// before reading all of it (413) is still heard.
pub fn request_bytes(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    content_type: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut writer = stream.try_clone().unwrap();
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&message);
    });
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let _ = sender.join();
    parse_reply(&raw)
}

/// A raw HTTP/1.1 response, parsed.
pub fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let bytes = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).to_string(),
        bytes,
    }
}

impl Server {
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get(&self, path: &str) -> Reply {
        request(
            &self.addr,
            "GET",
            path,
            &[("Authorization", &self.bearer())],
            "",
        )
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        request(
            &self.addr,
            "POST",
            path,
            &[("Authorization", &self.bearer())],
            body,
        )
    }

    /// POSTs a file's bytes as the raw body.
    pub fn upload(&self, path: &str, body: &[u8]) -> Reply {
        let bearer = self.bearer();
        let headers = [("Authorization", bearer.as_str())];
        request_bytes(
            &self.addr,
            "POST",
            path,
            &headers,
            body,
            Some("application/octet-stream"),
        )
    }
}
