//! serve: the local HTTP API (crates/server).

use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

/// Serve a store's JSON API and case viewer on this machine (loopback, with a token).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec serve ./clinic\n  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8765/api/v1/collections\n\nOpen the printed URL in a browser for the case viewer. The API is described at /api/v1/openapi.json (and in the README)."
)]
pub struct ServeArgs {
    store: PathBuf,
    /// Address to listen on. Anything but loopback exposes the store to the network and needs
    /// --tls-cert/--tls-key (HTTPS), or --insecure-http.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port (0 picks a free one; the start-up line shows it).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Accept plain HTTP on a non-loopback --bind (a trusted network only).
    #[arg(long)]
    insecure_http: bool,
    /// COLLECTION=DIR: where that collection's image files are now, overriding the archive root
    /// recorded at ingest (repeatable). Thumbnails are only ever read from inside this folder.
    #[arg(long = "root-map", value_name = "COLLECTION=DIR", value_parser = parse_root_map)]
    root_map: Vec<(String, PathBuf)>,
    /// Accept writes: POST .../records (JSONL upsert) and DELETE .../records/{id}. Without it
    /// they are refused (403).
    #[arg(long)]
    allow_writes: bool,
    /// Let pages of this one origin (https://host[:port]) call the API from a browser (CORS).
    /// Without it no CORS header is sent.
    #[arg(long, value_name = "ORIGIN")]
    cors: Option<String>,
    /// Serve HTTPS with this certificate (PEM, the chain); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds after which an unanswered request gets 503.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    request_timeout: f64,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        _ => Err(format!(
            "`{text}`: expected seconds, more than 0 and at most 86400"
        )),
    }
}

fn parse_root_map(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("`{text}`: expected COLLECTION=DIR")),
    }
}

pub fn serve(args: ServeArgs) -> Result<()> {
    if !args.bind.is_loopback() {
        let why = if args.tls_cert.is_some() {
            "over TLS: anyone on the network who has the token can read it"
        } else {
            "over plain HTTP: anyone on the network who sees the token can read it"
        };
        // Without TLS or --insecure-http the server refuses to start; it says so itself.
        if args.tls_cert.is_some() || args.insecure_http {
            eprintln!(
                "warning: serving {} beyond this machine on {} {why}",
                args.store.display(),
                args.bind
            );
        }
    }
    let options = medvec_server::ServeOptions {
        store: args.store,
        bind: args.bind,
        port: args.port,
        insecure_http: args.insecure_http,
        root_map: args.root_map.into_iter().collect(),
        allow_writes: args.allow_writes,
        cors: args.cors,
        request_timeout: std::time::Duration::from_secs_f64(args.request_timeout),
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| medvec_server::TlsFiles { cert, key }),
    };
    medvec_server::serve(options, |base, token| {
        // One line, flushed, so a script can read the URL and the token.
        println!("medvec serve: {base}/?token={token}");
        let _ = std::io::stdout().flush();
    })?;
    Ok(())
}
