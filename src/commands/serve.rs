//! serve: the local HTTP API (crates/server).

use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

/// Serve a store's JSON API on this machine (loopback, with a token).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec serve ./clinic\n  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8765/api/v1/collections\n\nThe API is described at /api/v1/openapi.json (and in the README)."
)]
pub struct ServeArgs {
    store: PathBuf,
    /// Address to listen on. Anything but loopback exposes the store to the network and needs
    /// --insecure-http (TLS is not built yet).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port (0 picks a free one; the start-up line shows it).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Accept plain HTTP on a non-loopback --bind (a trusted network only).
    #[arg(long)]
    insecure_http: bool,
}

pub fn serve(args: ServeArgs) -> Result<()> {
    if !args.bind.is_loopback() && args.insecure_http {
        eprintln!(
            "warning: serving {} over plain HTTP on {}: anyone on the network who sees the token can read it",
            args.store.display(),
            args.bind
        );
    }
    let options = medvec_server::ServeOptions {
        store: args.store,
        bind: args.bind,
        port: args.port,
        insecure_http: args.insecure_http,
    };
    medvec_server::serve(options, |addr, token| {
        // One line, flushed, so a script can read the URL and the token.
        println!("medvec serve: http://{addr}/?token={token}");
        let _ = std::io::stdout().flush();
    })?;
    Ok(())
}
