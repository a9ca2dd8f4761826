//! The case viewer's server side (`medvec serve`): thumbnails from the recorded archive root
//! (never outside it), search by an uploaded photo or DICOM file (the same hits as
//! `medvec search --image`, nothing stored), the payload schema for filters, and the page.

mod util;

use image::GenericImageView;
use serde_json::Value;
use std::path::{Path, PathBuf};
use util::server::{request, start, start_with, Server};
use util::{medvec, medvec_ok, s};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn fixtures() -> PathBuf {
    Path::new(REPO).join("fixtures")
}

/// The fixture archive ingested with the tiny models, from a copy of `fixtures/images` at
/// `root` (so a test may move or delete files).
fn ingested_store(dir: &Path, root: &Path) -> PathBuf {
    util::copy_dir(&fixtures().join("images"), root);
    let store = dir.join("store");
    let manifest = fixtures().join("archive/manifest.csv");
    let out = ingest(&store, &manifest, root, &dir.join("rejects.csv"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    store
}

/// `medvec ingest` of `manifest`'s files under `root` with the fixture models and template.
fn ingest(store: &Path, manifest: &Path, root: &Path, rejects: &Path) -> std::process::Output {
    let models = fixtures().join("models");
    let mut args = util::fixture_ingest_args(
        store,
        &models.join("tiny-image"),
        &models.join("tiny-text"),
        rejects,
    );
    for (flag, value) in [("--manifest", manifest), ("--root", root)] {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = s(value).to_string();
    }
    medvec(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn thumbnail(server: &Server, collection: &str, id: &str) -> util::server::Reply {
    server.get(&format!(
        "/api/v1/collections/{collection}/records/{id}/thumbnail"
    ))
}

fn mean_rgb(image: &image::DynamicImage) -> [f64; 3] {
    let rgb = image.to_rgb8();
    let mut sum = [0f64; 3];
    for pixel in rgb.pixels() {
        for (s, v) in sum.iter_mut().zip(pixel.0) {
            *s += f64::from(v);
        }
    }
    let n = f64::from(rgb.width() * rgb.height());
    sum.map(|s| s / n)
}

fn assert_close(a: [f64; 3], b: [f64; 3], tolerance: f64, what: &str) {
    let far = a.iter().zip(b).any(|(x, y)| (x - y).abs() > tolerance);
    assert!(!far, "{what}: {a:?} vs {b:?}");
}

/// A thumbnail is the record's own picture (its mean colour is the file's), fits 256 px with
/// its aspect ratio, and is a JPEG; a file gone from the root gives the placeholder PNG; a moved
/// archive is found again with `--root-map`.
#[test]
fn thumbnails_show_the_records_file_and_a_placeholder_when_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    let store = ingested_store(dir.path(), &root);
    let server = start(&store);
    for (id, file) in [
        ("ISIC_0027419", "rgb_100x75.png"),
        ("ISIC_0025030", "rgb_80x60.jpg"),
        ("ISIC_0031633", "palette_70x50.png"),
    ] {
        let reply = thumbnail(&server, "cases", id);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("image/jpeg"));
        assert_eq!(reply.header("x-medvec-thumbnail"), None);
        let thumb = image::load_from_memory(&reply.bytes).unwrap();
        let original = image::open(root.join(file)).unwrap();
        let (w, h) = original.dimensions();
        assert_eq!(thumb.width().max(thumb.height()), 256, "{id}");
        let ratio = |w: u32, h: u32| f64::from(w) / f64::from(h);
        assert!(
            (ratio(thumb.width(), thumb.height()) - ratio(w, h)).abs() < 0.02,
            "{id}"
        );
        assert_close(mean_rgb(&thumb), mean_rgb(&original), 4.0, id);
    }
    // Records of the same request are served again from the cache, byte for byte.
    let again = thumbnail(&server, "cases", "ISIC_0027419");
    assert_eq!(
        again.bytes,
        thumbnail(&server, "cases", "ISIC_0027419").bytes
    );

    std::fs::remove_file(root.join("rgb_80x60.jpg")).unwrap();
    let gone = thumbnail(&server, "cases", "ISIC_0025030");
    assert_eq!(gone.status, 200);
    assert_eq!(gone.header("content-type"), Some("image/png"));
    assert_eq!(gone.header("x-medvec-thumbnail"), Some("placeholder"));
    image::load_from_memory(&gone.bytes).unwrap();
    assert_eq!(thumbnail(&server, "cases", "nope").status, 404);
    drop(server);

    // The archive moved: placeholders, until --root-map says where it is.
    let moved = dir.path().join("moved");
    std::fs::rename(&root, &moved).unwrap();
    let server = start(&store);
    let lost = thumbnail(&server, "cases", "ISIC_0027419");
    assert_eq!(lost.header("x-medvec-thumbnail"), Some("placeholder"));
    drop(server);
    let map = format!("cases={}", s(&moved));
    let server = start_with(&store, &["--root-map", &map]);
    let found = thumbnail(&server, "cases", "ISIC_0027419");
    assert_eq!(
        found.header("content-type"),
        Some("image/jpeg"),
        "{}",
        found.body
    );
    let nowhere = format!("cases={}", s(&dir.path().join("nowhere")));
    let out = medvec(&["serve", s(&store), "--port", "0", "--root-map", &nowhere]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--root-map cases=") && err.contains("nowhere"),
        "{err}"
    );
}

/// Records imported with a hostile `_path` (`..`, absolute, a symlink out of the root) are
/// refused with 403, although each names a real picture the server could decode.
#[test]
fn a_path_leaving_the_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let picture = fixtures().join("images/rgb_100x75.png");
    std::fs::copy(&picture, root.join("sub/inside.png")).unwrap();
    let outside = dir.path().join("outside.png");
    std::fs::copy(&picture, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link.png")).unwrap();
    std::os::unix::fs::symlink(root.join("sub/inside.png"), root.join("ok-link.png")).unwrap();

    let store = dir.path().join("store");
    medvec_ok(&[
        "create",
        s(&store),
        "cases",
        "--vector",
        "image:2:cosine",
        "--field",
        "_path:string",
    ]);
    let records = [
        ("inside", "sub/inside.png"),
        ("symlink-inside", "ok-link.png"),
        ("dotdot", "../outside.png"),
        ("deep-dotdot", "sub/../../outside.png"),
        ("absolute", s(&outside)),
        ("symlink-out", "link.png"),
        ("etc", "../../../../../../etc/passwd"),
    ];
    let jsonl: String = records
        .iter()
        .map(|(id, path)| {
            format!(
                "{}\n",
                serde_json::json!({"id": id, "image": [1.0, 0.0], "_path": path})
            )
        })
        .collect();
    let file = dir.path().join("records.jsonl");
    std::fs::write(&file, jsonl).unwrap();
    medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&file)]);

    let map = format!("cases={}", s(&root));
    let server = start_with(&store, &["--root-map", &map]);
    for (id, _) in records {
        let reply = thumbnail(&server, "cases", id);
        if id.ends_with("inside") {
            assert_eq!(reply.status, 200, "{id}: {}", reply.body);
            assert_eq!(reply.header("content-type"), Some("image/jpeg"), "{id}");
        } else {
            assert_eq!(reply.status, 403, "{id}: {}", reply.body);
            let error = reply.json()["error"].as_str().unwrap().to_string();
            assert!(
                error.contains("leads out of the collection's root"),
                "{error}"
            );
            assert!(
                !error.contains("outside") && !error.contains("passwd"),
                "{error}"
            );
        }
    }
}

/// A DICOM record's thumbnail is its frame windowed as ingest windowed it (the recorded
/// `--window`), not the file's own window.
#[test]
fn a_dicom_thumbnail_uses_the_recorded_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let dicom = fixtures().join("dicom");
    let tiny = fixtures().join("models/tiny-image");
    let out = medvec(&[
        "ingest",
        s(&store),
        "ct",
        "--manifest",
        s(&dicom.join("manifest.csv")),
        "--root",
        s(&dicom),
        "--image-model",
        s(&tiny),
        "--window",
        "-1000,100",
        "--rejects",
        s(&dir.path().join("rejects.csv")),
    ]);
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 3),
        "{out:?}"
    );
    let server = start(&store);
    let reply = thumbnail(&server, "ct", "ct_s16_rescale");
    assert_eq!(
        reply.header("content-type"),
        Some("image/jpeg"),
        "{}",
        reply.body
    );
    let thumb = image::load_from_memory(&reply.bytes).unwrap();
    let decode = |window: &str| {
        let window = window.parse().unwrap();
        let limits = medvec_ingest::encode::ImageLimits::default();
        let how = medvec_ingest::encode::Decoding {
            limits: &limits,
            draft: None,
            window: &window,
        };
        let file = dicom.join("ct_s16_rescale.dcm");
        let image = medvec_ingest::encode::load_any_image(&file, how, None).unwrap();
        mean_rgb(&image.thumbnail(256, 256))
    };
    let (recorded, own) = (decode("-1000,100"), decode("file"));
    assert!(
        (recorded[0] - own[0]).abs() > 10.0,
        "the windows must differ for this test"
    );
    assert_close(mean_rgb(&thumb), recorded, 3.0, "windowed as recorded");
}

/// Every file and its size and modification time under `dir`: what "nothing was written" means.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            out.extend(tree(&entry.path()));
        } else {
            out.push((entry.path(), meta.len(), meta.modified().unwrap()));
        }
    }
    out.sort();
    out
}

/// An uploaded photo and an uploaded DICOM file find what `medvec search --image` finds for the
/// same file; too large is 413, a decompression bomb or a non-image is 422; nothing is stored.
#[test]
fn an_upload_searches_like_search_image_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingested_store(dir.path(), &dir.path().join("images"));
    let server = start(&store);
    let before = tree(&store);
    let upload = "/api/v1/collections/cases/search/upload";
    for (file, query) in [
        (fixtures().join("images/rgb_80x60.jpg"), "?k=5"),
        (
            fixtures().join("images/tall_30x90.jpg"),
            "?k=3&filter=split%20%3D%20%22train%22",
        ),
        (fixtures().join("dicom/mono2_u8.dcm"), "?k=4&field=image"),
    ] {
        let reply = server.upload(&format!("{upload}{query}"), &std::fs::read(&file).unwrap());
        assert_eq!(reply.status, 200, "{}", reply.body);
        let k: usize = query.split('&').next().unwrap()[3..].parse().unwrap();
        let filter = query.contains("filter").then_some("split = \"train\"");
        let (api, cli) = (
            util::hits_of(&reply.json()),
            util::search_image(&store, &file, k, filter),
        );
        assert_eq!(api.len(), k, "{file:?}");
        assert_eq!(api.len(), cli.len());
        for ((a, x), (c, y)) in api.iter().zip(&cli) {
            assert_eq!(a, c, "{file:?}");
            assert!((x - y).abs() < 1e-6, "{file:?}: {x} vs {y}");
        }
    }
    // Cross-modal, as with the page's λ slider: the photo searching the texts, gap closed.
    let photo = fixtures().join("images/rgb_80x60.jpg");
    let query = format!("{upload}?k=4&field=text&shift=1.0");
    let reply = server.upload(&query, &std::fs::read(&photo).unwrap());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let args = [
        "search",
        s(&store),
        "cases",
        "--field",
        "text",
        "--image",
        s(&photo),
        "--shift",
        "1.0",
        "-k",
        "4",
        "--json",
    ];
    let cli = util::json_hits(&medvec_ok(&args));
    let ids = |hits: &[(String, f64)]| hits.iter().map(|h| h.0.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&util::hits_of(&reply.json())), ids(&cli));
    assert_eq!(cli.len(), 4);

    let oversized = vec![0u8; 33 << 20];
    assert_eq!(server.upload(upload, &oversized).status, 413);
    for (bad, status) in [
        ("images/bad/bomb_60000x60000.png", 422),
        ("dicom/bad/bomb_native.dcm", 422),
        ("images/bad/not_an_image.png", 422),
        ("images/bad/truncated.jpg", 422),
    ] {
        let reply = server.upload(upload, &std::fs::read(fixtures().join(bad)).unwrap());
        assert_eq!(reply.status, status, "{bad}: {}", reply.body);
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(
            error.starts_with("upload") && !error.contains('\n'),
            "{error}"
        );
    }
    assert_eq!(server.upload(upload, b"").status, 400);
    assert_eq!(
        server.upload(&format!("{upload}?colour=1"), b"x").status,
        400
    );
    assert_eq!(
        tree(&store),
        before,
        "an upload must not write to the store"
    );
}

/// `/fields` lists the payload fields for the filter builder: string fields with their
/// distinct values (bounded), numbers without, the reserved `_path` left out.
#[test]
fn fields_list_the_payload_schema_for_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingested_store(dir.path(), &dir.path().join("images"));
    let server = start(&store);
    let fields = server.get("/api/v1/collections/cases/fields").json();
    let fields = fields["fields"].as_array().unwrap();
    let named = |name: &str| fields.iter().find(|f| f["name"] == name).cloned();
    assert!(named("_path").is_none());
    assert_eq!(named("dx").unwrap()["values"], serde_json::json!(["bkl"]));
    assert_eq!(
        named("sex").unwrap()["values"],
        serde_json::json!(["male", "unknown"])
    );
    assert_eq!(named("sex").unwrap()["type"], "string");

    // Many distinct values: no list (the page shows no dropdown); ints have none either.
    let many = dir.path().join("many");
    util::create_cases(&many);
    medvec_ok(&[
        "create",
        s(&many),
        "notes",
        "--vector",
        "image:2:cosine",
        "--field",
        "note:string",
    ]);
    let jsonl: String = (0..60)
        .map(|n| format!("{}\n", serde_json::json!({"id": format!("r{n}"), "image": [1.0, n as f32], "note": format!("note {n}")})))
        .collect();
    let file = dir.path().join("notes.jsonl");
    std::fs::write(&file, jsonl).unwrap();
    medvec_ok(&["import", s(&many), "notes", "--jsonl", s(&file)]);
    let server = start(&many);
    let notes = server.get("/api/v1/collections/notes/fields").json();
    assert_eq!(notes["fields"][0]["name"], "note");
    assert!(notes["fields"][0]["values"].is_null(), "{notes}");
    let cases = server.get("/api/v1/collections/cases/fields").json();
    assert_eq!(cases["fields"][0]["type"], "int");
    assert!(cases["fields"][0]["values"].is_null());
}

/// The page and its script and style are served (with the token) under the strict policy: no
/// inline script or style that the policy would block.
#[test]
fn the_page_is_served_with_its_assets_and_no_inline_code() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    util::create_cases(&store);
    let server = start(&store);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains(r#"<script src="/app.js" defer></script>"#));
    assert!(page
        .body
        .contains(r#"<link rel="stylesheet" href="/app.css">"#));
    let handler = |word: &str| word.starts_with("on") && word.contains('=');
    assert!(!page.body.contains("style="), "inline style");
    assert!(!page.body.split_whitespace().any(handler), "inline handler");
    assert_eq!(page.body.matches("<script").count(), 1);
    for (path, content_type, needle) in [
        ("/app.js", "text/javascript; charset=utf-8", "search/upload"),
        ("/app.css", "text/css; charset=utf-8", "@media"),
    ] {
        let reply = server.get(path);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type));
        assert!(reply.body.contains(needle), "{path}");
        assert!(reply
            .header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'"));
        assert_eq!(request(&server.addr, "GET", path, &[], "").status, 401);
    }
    let openapi = server.get("/api/v1/openapi.json").json();
    let paths = [
        "search/upload",
        "records/{id}/thumbnail",
        "fields",
        "heads/{head}/classify/upload",
    ];
    for path in paths {
        let path = format!("/api/v1/collections/{{name}}/{path}");
        assert!(openapi["paths"].get(&path).is_some(), "{path}");
    }
}

/// The archive root is the first ingest's: a later ingest of the same collection from another
/// root keeps it, and its records (outside that root) get no `_path`, so a placeholder; records
/// of the first root keep theirs.
#[test]
fn a_later_ingest_from_another_root_keeps_the_recorded_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let store = ingested_store(dir.path(), &first);
    let second = dir.path().join("second");
    util::copy_dir(&fixtures().join("images"), &second);
    let manifest = dir.path().join("more.csv");
    let header = "id,path,dx,dx_type,age,sex,localization,split";
    let row = "LATER_1,rgb_100x75.png,bkl,histo,80,male,scalp,train";
    std::fs::write(&manifest, format!("{header}\n{row}\n")).unwrap();
    let rejects = dir.path().join("more-rejects.csv");
    let out = ingest(&store, &manifest, &second, &rejects);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = |id: &str| {
        let record = util::medvec_json(&["get", s(&store), "cases", id, "--no-vectors"]);
        record["payload"]["_path"].clone()
    };
    assert_eq!(get("ISIC_0027419"), "rgb_100x75.png");
    assert!(get("LATER_1").is_null(), "{}", get("LATER_1"));
    let server = start(&store);
    let later = thumbnail(&server, "cases", "LATER_1");
    assert_eq!(later.header("x-medvec-thumbnail"), Some("placeholder"));
    let earlier = thumbnail(&server, "cases", "ISIC_0027419");
    assert_eq!(earlier.header("content-type"), Some("image/jpeg"));
}

/// A head whose fields all hold images classifies an uploaded photo as `medvec classify --image`
/// does; a head that also reads text is refused with the field it lacks.
#[test]
fn an_uploaded_photo_is_classified_by_an_image_head_as_the_cli_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingested_store(dir.path(), &dir.path().join("images"));
    util::train_sex_head(&store, "photo", "image");
    util::train_sex_head(&store, "both", "image,text");
    let photo = fixtures().join("images/rgb_80x60.jpg");
    let cli = util::classify_image(&store, "photo", &photo, &dir.path().join("cli.jsonl"));

    let server = start(&store);
    let bytes = std::fs::read(&photo).unwrap();
    let reply = server.upload(
        "/api/v1/collections/cases/heads/photo/classify/upload",
        &bytes,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let api = &reply.json()["predictions"][0];
    assert_eq!(
        (api["id"].as_str(), &api["predicted"]),
        (Some("upload"), &cli["predicted"])
    );
    let probabilities = |v: &Value| -> Vec<f64> {
        let map = v["probabilities"].as_object().unwrap();
        map.values().map(|p| p.as_f64().unwrap()).collect()
    };
    let (a, c) = (probabilities(api), probabilities(&cli));
    assert_eq!(a.len(), 2);
    assert!(
        a.iter().zip(&c).all(|(x, y)| (x - y).abs() <= 1e-6),
        "{a:?} vs {c:?}"
    );

    let refused = server.upload(
        "/api/v1/collections/cases/heads/both/classify/upload",
        &bytes,
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("also reads `text`"),
        "{}",
        refused.body
    );
    let unknown = server.upload(
        "/api/v1/collections/cases/heads/nope/classify/upload",
        &bytes,
    );
    assert!((400..500).contains(&unknown.status), "{}", unknown.status);
}
