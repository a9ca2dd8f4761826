//! `medvec serve`: the JSON API answers as the CLI does, sees a writer's commits without a
//! restart, and guards the store (token, loopback, headers).

mod util;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use util::server::{request, start};
use util::{import_jsonl, medvec_bin, medvec_ok, s, write_jsonl};

fn store_with_cases(dir: &Path, rows: usize) -> std::path::PathBuf {
    let store = dir.join("store");
    util::create_cases(&store);
    let jsonl = dir.join("cases.jsonl");
    write_jsonl(&jsonl, 0, rows, 8);
    import_jsonl(&store, &jsonl, 1000);
    store
}

#[test]
fn the_api_answers_as_the_cli_does_and_sees_new_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_cases(dir.path(), 1500);
    let server = start(&store);

    let collections = server.get("/api/v1/collections").json();
    assert_eq!(collections["collections"][0]["name"], "cases");
    assert_eq!(collections["collections"][0]["count"], 1500);

    // Search by stored id and by vector: the same ids and scores as `medvec search --json`.
    for (body, args) in [
        (
            r#"{"field": "image", "like": "case-000010", "k": 5}"#,
            vec!["--like", "case-000010"],
        ),
        (
            r#"{"field": "image", "vector": [1,0,0,0,0,0,0,0], "k": 5, "filter": "n >= 100", "exact": true}"#,
            vec![
                "--vector",
                "1,0,0,0,0,0,0,0",
                "--filter",
                "n >= 100",
                "--exact",
            ],
        ),
    ] {
        let reply = server.post("/api/v1/collections/cases/search", body);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let hits = reply.json()["hits"].as_array().unwrap().clone();
        let cli: Value = serde_json::from_str(&medvec_ok(
            &[
                &[
                    "search",
                    s(&store),
                    "cases",
                    "--field",
                    "image",
                    "-k",
                    "5",
                    "--json",
                ][..],
                &args,
            ]
            .concat(),
        ))
        .unwrap();
        let cli_hits = cli["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 5);
        for (api, cli) in hits.iter().zip(cli_hits) {
            assert_eq!(api["id"], cli["id"]);
            assert!((api["score"].as_f64().unwrap() - cli["score"].as_f64().unwrap()).abs() < 1e-6);
            assert!(api["payload"].is_object());
        }
    }

    // A record, as `medvec get` prints it.
    let record = server
        .get("/api/v1/collections/cases/records/case-000007?vectors=true")
        .json();
    let cli: Value =
        serde_json::from_str(medvec_ok(&["get", s(&store), "cases", "case-000007"]).trim())
            .unwrap();
    assert_eq!(record, cli);
    assert_eq!(
        server.get("/api/v1/collections/cases/records/nope").status,
        404
    );
    assert_eq!(
        server
            .get("/api/v1/collections/nope/records/case-000007")
            .status,
        404
    );

    // A writer commits more records while the server runs: the next request sees them.
    let more = dir.path().join("more.jsonl");
    write_jsonl(&more, 1500, 300, 8);
    import_jsonl(&store, &more, 1000);
    let collections = server.get("/api/v1/collections").json();
    assert_eq!(collections["collections"][0]["count"], 1800);
    assert_eq!(
        server
            .get("/api/v1/collections/cases/records/case-001799")
            .status,
        200
    );

    // The OpenAPI document is served and names every path.
    let openapi = server.get("/api/v1/openapi.json").json();
    for path in ["/api/v1/collections", "/api/v1/collections/{name}/search"] {
        assert!(openapi["paths"].get(path).is_some(), "{path}");
    }
}

#[test]
fn bad_requests_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_cases(dir.path(), 50);
    let server = start(&store);
    let search = "/api/v1/collections/cases/search";
    for (body, expect) in [
        ("not json", "request body"),
        (r#"{"field": "image"}"#, "exactly one of"),
        (
            r#"{"field": "image", "like": "nope"}"#,
            "no record with id `nope`",
        ),
        (r#"{"field": "image", "vector": [1, 2]}"#, "dimension"),
        (
            r#"{"field": "image", "like": "case-000001", "filter": "n >>"}"#,
            "filter",
        ),
        (
            r#"{"field": "image", "like": "case-000001", "k": 0}"#,
            "k must be",
        ),
        (
            r#"{"field": "image", "like": "case-000001", "rescore": 0}"#,
            "rescore: must be at least 1",
        ),
        (
            r#"{"field": "image", "like": "case-000001", "colour": 1}"#,
            "colour",
        ),
        (r#"{"field": "nope", "like": "case-000001"}"#, "nope"),
    ] {
        let reply = server.post(search, body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(
            error.contains(expect) && !error.contains('\n'),
            "{body}: {error}"
        );
    }
}

#[test]
fn every_request_needs_the_token_and_responses_carry_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_cases(dir.path(), 20);
    let server = start(&store);
    let path = "/api/v1/collections";
    assert_eq!(request(&server.addr, "GET", path, &[], "").status, 401);
    let wrong = format!("Bearer {}x", &server.token[..server.token.len() - 1]);
    let denied = request(&server.addr, "GET", path, &[("Authorization", &wrong)], "");
    assert_eq!(denied.status, 401);
    assert!(!denied.body.contains("cases"), "{}", denied.body);

    // The start-up URL sets a cookie that later requests may use instead.
    let first = request(
        &server.addr,
        "GET",
        &format!("/?token={}", server.token),
        &[],
        "",
    );
    assert_eq!(first.status, 200);
    let cookie = first.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let with_cookie = request(&server.addr, "GET", path, &[("Cookie", pair)], "");
    assert_eq!(with_cookie.status, 200);

    let reply = server.get(path);
    assert!(reply
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[test]
fn a_non_loopback_bind_is_refused_without_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_cases(dir.path(), 5);
    let out = Command::new(medvec_bin())
        .args(["serve", s(&store), "--bind", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--insecure-http") && err.contains("--tls-cert") && err.lines().count() == 1,
        "{err}"
    );
    let missing = Command::new(medvec_bin())
        .args(["serve", s(&dir.path().join("nowhere")), "--port", "0"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nowhere"));
}

/// A clinical description searching the images (cross-modal, with the gap closed) and the texts:
/// encoded with the collection's recorded text model, the same hits as `medvec search --text`.
#[test]
fn a_text_query_is_encoded_with_the_recorded_model() {
    let dir = tempfile::tempdir().unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/models");
    let store = dir.path().join("store");
    let args = util::fixture_ingest_args(
        &store,
        &models.join("tiny-image"),
        &models.join("tiny-text"),
        &dir.path().join("rejects.csv"),
    );
    let out = util::medvec(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = start(&store);
    let text = "Patient diagnosed via histo. Age: 70 years. Sex: female. Localization: back.";
    for (field, shift) in [("image", Some(1.0)), ("text", None)] {
        let mut body = serde_json::json!({"field": field, "text": text, "k": 5, "exact": true});
        let mut args = vec![
            "search",
            s(&store),
            "cases",
            "--field",
            field,
            "--text",
            text,
        ];
        args.extend(["-k", "5", "--exact", "--json"]);
        if let Some(lambda) = shift {
            body["shift"] = lambda.into();
            args.extend(["--shift", "1.0"]);
        }
        let reply = server.post("/api/v1/collections/cases/search", &body.to_string());
        assert_eq!(reply.status, 200, "{}", reply.body);
        let cli: Value = serde_json::from_str(&medvec_ok(&args)).unwrap();
        let ids = |v: &Value| -> Vec<String> {
            v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].to_string())
                .collect()
        };
        assert_eq!(ids(&reply.json()), ids(&cli), "{field}");
        assert_eq!(ids(&cli).len(), 5);
    }
}

/// Saved heads are listed, and classifying stored ids gives what `medvec classify` writes.
#[test]
fn heads_are_listed_and_classify_stored_records_as_the_cli_does() {
    let dir = tempfile::tempdir().unwrap();
    let (store, predictions) = util::demo_with_head(dir.path());
    let cli: Vec<Value> = predictions.into_iter().take(12).collect();
    let server = start(&store);
    let heads = server.get("/api/v1/collections/ham10000/heads").json();
    assert_eq!(heads["heads"][0]["name"], "dx-late");
    assert_eq!(heads["heads"][0]["meta"]["label_field"], "dx");
    let ids: Vec<&Value> = cli.iter().map(|p| &p["id"]).collect();
    let body = serde_json::json!({ "ids": ids }).to_string();
    let reply = server.post("/api/v1/collections/ham10000/heads/dx-late/classify", &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let api = reply.json()["predictions"].as_array().unwrap().clone();
    assert_eq!(api.len(), cli.len());
    for (a, c) in api.iter().zip(&cli) {
        assert_eq!(a["id"], c["id"]);
        assert_eq!(a["predicted"], c["predicted"]);
        for (class, p) in c["probabilities"].as_object().unwrap() {
            let q = a["probabilities"][class].as_f64().unwrap();
            assert!((q - p.as_f64().unwrap()).abs() < 1e-6, "{class}");
        }
    }
    let missing = server.post(
        "/api/v1/collections/ham10000/heads/nope/classify",
        &serde_json::json!({"ids": [ids[0]]}).to_string(),
    );
    assert!(missing.status >= 400, "{}", missing.body);
}

fn count(server: &util::server::Server) -> u64 {
    server.get("/api/v1/collections").json()["collections"][0]["count"]
        .as_u64()
        .unwrap()
}

/// Upserts (JSONL, as `medvec import --jsonl` reads it) and deletes are refused (403) unless the
/// server runs with `--allow-writes`; then they land, and bad records are a 400 naming the line.
#[test]
fn writes_need_allow_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_cases(dir.path(), 20);
    let jsonl = dir.path().join("new.jsonl");
    write_jsonl(&jsonl, 100, 2, 8);
    let body = std::fs::read_to_string(&jsonl).unwrap();
    let records = "/api/v1/collections/cases/records";
    let one = "/api/v1/collections/cases/records/case-000003";
    let delete = |server: &util::server::Server, path: &str| {
        let bearer = format!("Bearer {}", server.token);
        request(
            &server.addr,
            "DELETE",
            path,
            &[("Authorization", &bearer)],
            "",
        )
    };

    let read_only = start(&store);
    for reply in [read_only.post(records, &body), delete(&read_only, one)] {
        assert_eq!(reply.status, 403, "{}", reply.body);
        assert!(reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("--allow-writes"));
    }
    assert_eq!(count(&read_only), 20);
    drop(read_only);

    let server = util::server::start_with(&store, &["--allow-writes"]);
    let reply = server.post(records, &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["upserted"], 2);
    let added = server
        .get("/api/v1/collections/cases/records/case-000101")
        .json();
    assert_eq!(added["payload"]["n"], 101);
    assert_eq!(delete(&server, one).status, 200);
    assert_eq!(server.get(one).status, 404);
    assert_eq!(delete(&server, one).status, 404);
    assert_eq!(count(&server), 21);
    let wrong = r#"{"id": "x", "image": [1, 2]}"#.to_string() + "\n";
    let bad = server.post(
        records,
        &format!("{}\n{wrong}", body.lines().next().unwrap()),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let error = bad.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("dimension") && !error.contains('\n'),
        "{error}"
    );
    assert_eq!(count(&server), 21, "a bad batch writes nothing");
}

/// CORS headers appear only with `--cors ORIGIN`, only for that origin; its preflight is
/// answered without the token (browsers send none); a bad origin is refused at start.
#[test]
fn cors_headers_only_for_the_configured_origin() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_cases(dir.path(), 5);
    let origin = "https://viewer.example.org";
    let preflight = |server: &util::server::Server, from: &str| {
        let headers = [
            ("Origin", from),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization"),
        ];
        request(
            &server.addr,
            "OPTIONS",
            "/api/v1/collections/cases/search",
            &headers,
            "",
        )
    };
    let plain = start(&store);
    let reply = preflight(&plain, origin);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    drop(plain);

    let server = util::server::start_with(&store, &["--cors", origin]);
    let reply = preflight(&server, origin);
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
    assert!(reply
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    let other = preflight(&server, "https://evil.example.com");
    assert_eq!(other.header("access-control-allow-origin"), None);
    let bearer = format!("Bearer {}", server.token);
    let path = "/api/v1/collections";
    let get = |from: &str| {
        request(
            &server.addr,
            "GET",
            path,
            &[("Authorization", &bearer), ("Origin", from)],
            "",
        )
    };
    assert_eq!(
        get(origin).header("access-control-allow-origin"),
        Some(origin)
    );
    assert_eq!(
        get("https://evil.example.com").header("access-control-allow-origin"),
        None
    );
    // Without the token the allowed origin still reads nothing.
    assert_eq!(
        request(&server.addr, "GET", path, &[("Origin", origin)], "").status,
        401
    );

    let refused = util::medvec(&["serve", s(&store), "--port", "0", "--cors", "*"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--cors") && err.lines().count() == 1, "{err}");
}

/// A request still unanswered after `--request-timeout` gets 503 (here: a client that never
/// sends the body it announced); a JSON body over 1 MiB gets 413.
#[test]
fn requests_are_bounded_in_time_and_size() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_cases(dir.path(), 50);
    let search = "/api/v1/collections/cases/search";
    let hasty = util::server::start_with(&store, &["--request-timeout", "0.3"]);
    let mut stream = std::net::TcpStream::connect(&hasty.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {search} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"field\":",
        hasty.token
    );
    let started = std::time::Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(
        &answer,
        b"HTTP/1.1 503",
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let waited = started.elapsed().as_secs_f64();
    assert!((0.25..5.0).contains(&waited), "answered after {waited} s");
    drop(hasty);

    let server = start(&store);
    let body = r#"{"field": "image", "like": "case-000001", "k": 5}"#;
    assert_eq!(server.post(search, body).status, 200);
    let huge = format!(r#"{{"field": "image", "like": "{}"}}"#, "x".repeat(2 << 20));
    assert_eq!(server.post(search, &huge).status, 413);
    let zero = util::medvec(&["serve", s(&store), "--request-timeout", "0"]);
    assert!(!zero.status.success());
}

/// A GET over TLS that trusts only `cert` (DER), read to the end.
fn https_get(addr: &str, cert: &[u8], path: &str, token: &str) -> util::server::Reply {
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.to_vec().into()).unwrap();
    #[allow(deprecated)] // the server's provider (see crates/server/src/tls.rs)
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // The server may close without close_notify: what arrived is the whole response.
    let _ = tls.read_to_end(&mut raw);
    util::server::parse_reply(&raw)
}

/// With `--tls-cert/--tls-key` the server speaks HTTPS only (its start-up URL says so, plain HTTP
/// gets no HTTP answer, the cookie is `Secure`), and then may listen on every interface; a key
/// that is not one is a one-line error naming the file.
#[test]
fn tls_serves_https_and_allows_a_non_loopback_bind() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_cases(dir.path(), 5);
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let tls_args = ["--tls-cert", s(&cert), "--tls-key", s(&key)];
    let server =
        util::server::start_with(&store, &[&tls_args[..], &["--bind", "0.0.0.0"]].concat());
    assert_eq!(server.scheme, "https");
    let der = certified.cert.der().to_vec();
    let reply = https_get(&server.addr, &der, "/api/v1/collections", &server.token);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["collections"][0]["count"], 5);
    let first = https_get(&server.addr, &der, &format!("/?token={}", server.token), "");
    assert!(first.header("set-cookie").unwrap().contains("; Secure"));

    let mut plain = std::net::TcpStream::connect(&server.addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let _ = plain.write_all(b"GET /api/v1/collections HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(
        !raw.starts_with(b"HTTP/"),
        "plain HTTP must not be answered"
    );
    drop(server);

    let wrong = util::medvec(&[
        "serve",
        s(&store),
        "--port",
        "0",
        "--tls-cert",
        s(&cert),
        "--tls-key",
        s(&cert),
    ]);
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("cert.pem") && err.contains("TLS") && err.lines().count() == 1,
        "{err}"
    );
}
