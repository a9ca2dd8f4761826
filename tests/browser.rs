//! The case viewer in a real browser: headless Chromium driven over WebDriver (chromedriver).
//! The page opens with the token, a fixture photo is uploaded through the file input, the grid
//! must show exactly the hits `medvec search --image` gives; then a filter chosen in the page's
//! dropdown must give the CLI's filtered hits, and clicking a case must search like it
//! (`--like`). A screenshot is saved under the target folder.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`, `chromium-driver`; `tools/setup.sh`
//! installs them).

mod util;

use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::server::{start, Server};
use util::{medvec, s};

const K: usize = 5;

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    // A port the OS says is free now; chromedriver takes it a moment later.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start chromedriver ({e}): install chromium and chromium-driver (tools/setup.sh does)")
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Headless Chromium with a fresh profile and nothing reaching out to the network (this
/// closed network refuses those connections, which would slow every start).
async fn open_browser(driver: &Driver, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", s(profile))])
    .collect::<Vec<_>>();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("chromedriver starts a Chromium session")
}

/// The page at the start-up URL (the token becomes a cookie).
async fn open_page(client: &Client, server: &Server) -> Result<(), fantoccini::error::CmdError> {
    let url = format!("http://{}/?token={}", server.addr, server.token);
    client.goto(&url).await
}

/// The ids of the grid's cards, in order, read in one script run (the page may replace the grid
/// between two WebDriver calls).
async fn grid_ids(client: &Client) -> Vec<String> {
    let script = "return [...document.querySelectorAll('#grid .card')].map(c => c.dataset.id)";
    let ids = client.execute(script, Vec::new()).await.unwrap();
    serde_json::from_value(ids).unwrap()
}

/// Waits (up to 20 s) until the grid shows `want`; fails with what it shows and the status line.
async fn wait_for_grid(client: &Client, want: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = grid_ids(client).await;
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let status = client.find(Locator::Id("status")).await.unwrap();
            panic!(
                "grid {got:?}, want {want:?}; status: {}",
                status.text().await.unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ids `medvec search --image` gives.
fn cli_ids(store: &Path, image: &Path, filter: Option<&str>) -> Vec<String> {
    let hits = util::search_image(store, image, K, filter);
    hits.into_iter().map(|(id, _)| id).collect()
}

/// The ids `medvec search --like ID --filter F` gives.
fn cli_like_ids(store: &Path, id: &str, filter: &str) -> Vec<String> {
    let hits = util::search_hits(store, ["--like", id], K, Some(filter));
    hits.into_iter().map(|(id, _)| id).collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The fixture archive ingested with the tiny models into `dir/store` (some rows are rejected).
fn ingested_fixture(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    let models = fixtures().join("models");
    let args = util::fixture_ingest_args(
        &store,
        &models.join("tiny-image"),
        &models.join("tiny-text"),
        &dir.join("rejects.csv"),
    );
    let out = medvec(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    store
}

/// The chart's bars are the CLI prediction's: one per class, each probability within 1e-5,
/// the tallest marked on the predicted class.
fn assert_bars_are(bars: &[(String, f64, bool)], cli: &serde_json::Value) {
    let probabilities = cli["probabilities"].as_object().unwrap();
    assert_eq!(bars.len(), probabilities.len(), "{bars:?}");
    for (class, p, top) in bars {
        let want = probabilities[class].as_f64().unwrap();
        assert!((p - want).abs() < 1e-5, "{class}: {p} vs {want}");
        assert_eq!(*top, cli["predicted"] == class.as_str(), "{class}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_viewer_finds_an_uploaded_photos_neighbours_and_filters_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingested_fixture(dir.path());
    let photo = fixtures().join("images/rgb_80x60.jpg");
    let filter = "localization = \"scalp\"";
    let (all, filtered) = (
        cli_ids(&store, &photo, None),
        cli_ids(&store, &photo, Some(filter)),
    );
    assert_eq!(all.len(), K);
    assert_ne!(
        all, filtered,
        "the filter must change the answer for this test"
    );

    let server = start(&store);
    let driver = start_driver();
    let client = open_browser(&driver, &dir.path().join("profile")).await;
    let run = async {
        open_page(&client, &server).await?;
        client
            .wait()
            .for_element(Locator::Css("#filters select[name=localization]"))
            .await?;
        let k = client.find(Locator::Id("k")).await?;
        k.clear().await?;
        k.send_keys(&K.to_string()).await?;
        // Choosing a file runs the search.
        let input = client.find(Locator::Id("file")).await?;
        input.send_keys(s(&photo)).await?;
        wait_for_grid(&client, &all).await;
        // Each card's picture is the record's thumbnail.
        let img = client.find(Locator::Css("#grid .card img")).await?;
        let src = img.attr("src").await?.unwrap_or_default();
        assert!(
            src.ends_with(&format!("/records/{}/thumbnail", all[0])),
            "{src}"
        );

        client
            .find(Locator::Css("#filters select[name=localization]"))
            .await?
            .select_by_value("scalp")
            .await?;
        let shown = client
            .find(Locator::Id("filter-text"))
            .await?
            .text()
            .await?;
        assert_eq!(shown, filter);
        client.find(Locator::Id("search")).await?.click().await?;
        wait_for_grid(&client, &filtered).await;
        // The screenshot of the README (tests/screenshots/viewer.png is a reduced copy).
        let png = client.screenshot().await?;
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer.png");
        std::fs::write(&shot, &png).unwrap();
        image::load_from_memory(&png).expect("the screenshot is a PNG");

        // Clicking a case makes it the query (a stored-id search, the filter still on).
        let chosen = &filtered[1];
        let card = format!("#grid .card[data-id=\"{chosen}\"]");
        client.find(Locator::Css(&card)).await?.click().await?;
        wait_for_grid(&client, &cli_like_ids(&store, chosen, filter)).await;
        let query = client.find(Locator::Id("case-id")).await?;
        assert_eq!(query.prop("value").await?.as_deref(), Some(chosen.as_str()));

        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = client.close().await;
    run.unwrap();
}

/// With a saved head, querying a stored case draws its class probabilities: one bar per class,
/// the tallest marked, each the probability `medvec classify` gives.
#[tokio::test(flavor = "current_thread")]
async fn a_stored_case_shows_the_heads_class_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let (store, predictions) = util::demo_with_head(dir.path());
    let cli = &predictions[0];
    let id = cli["id"].as_str().unwrap().to_string();

    let server = start(&store);
    let driver = start_driver();
    let client = open_browser(&driver, &dir.path().join("profile")).await;
    let run = async {
        open_page(&client, &server).await?;
        let collection = client.wait().for_element(Locator::Id("collection")).await?;
        collection.select_by_value("ham10000").await?;
        client
            .wait()
            .for_element(Locator::Css("#head option[value=dx-late]"))
            .await?;
        client
            .find(Locator::Css(".tabs button[data-mode=case]"))
            .await?
            .click()
            .await?;
        client
            .find(Locator::Id("case-id"))
            .await?
            .send_keys(&id)
            .await?;
        client.find(Locator::Id("search")).await?.click().await?;
        assert_bars_are(&wait_for_bars(&client).await, cli);
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = client.close().await;
    run.unwrap();
}

/// The chart's bars as (class, probability, tallest), once drawn (up to 20 s).
async fn wait_for_bars(client: &Client) -> Vec<(String, f64, bool)> {
    let script = "return [...document.querySelectorAll('#chart .bar')].map(b => [b.dataset.class, Number(b.dataset.p), b.classList.contains('top')])";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bars: Vec<(String, f64, bool)> =
            serde_json::from_value(client.execute(script, Vec::new()).await.unwrap()).unwrap();
        if !bars.is_empty() {
            return bars;
        }
        let status = client
            .find(Locator::Id("status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(Instant::now() < deadline, "no bars; status: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With a head whose fields all hold images, an uploaded photo draws the class probabilities
/// `medvec classify --image` gives it.
#[tokio::test(flavor = "current_thread")]
async fn an_uploaded_photo_shows_an_image_heads_class_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingested_fixture(dir.path());
    util::train_sex_head(&store, "photo", "image");
    let photo = fixtures().join("images/rgb_80x60.jpg");
    let cli = &util::classify_image(&store, "photo", &photo, &dir.path().join("cli.jsonl"));

    let server = start(&store);
    let driver = start_driver();
    let client = open_browser(&driver, &dir.path().join("profile")).await;
    let run = async {
        open_page(&client, &server).await?;
        client
            .wait()
            .for_element(Locator::Css("#head option[value=photo]"))
            .await?
            .click()
            .await?;
        client
            .find(Locator::Id("file"))
            .await?
            .send_keys(s(&photo))
            .await?;
        assert_bars_are(&wait_for_bars(&client).await, cli);
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = client.close().await;
    run.unwrap();
}
