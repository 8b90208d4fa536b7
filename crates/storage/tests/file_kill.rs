//! No torn file: a writer process killed with SIGKILL at a random moment, 200
//! times over, always leaves the store file at the old or the new version,
//! parseable and self-consistent.
//!
//! The test binary plays both parts: run with `ARCGIS_AUTH_KILL_TEST_CHILD` set,
//! the test below becomes the writer and loops until it is killed.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arcgis_auth_core::{ExposeSecret, Portal, SecretString};
use arcgis_auth_storage::{FileStore, SaveMode, SessionKind, SessionRecord, SessionStore};

#[path = "support/child.rs"]
mod child;

const CHILD: &str = "ARCGIS_AUTH_KILL_TEST_CHILD";
const KEY: &str = "killed/writer";
const ITERATIONS: usize = 200;
/// What the writer prints once its first write is on disk.
const WRITING: &str = "arcgis-auth-kill-test: writing";

/// The record for generation `n`: its size varies so a torn write would show.
fn record(n: u64) -> SessionRecord {
    let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
    r.username = Some(format!("writer-{n}"));
    let len = usize::try_from(n % 13).unwrap() * 1500 + 1;
    let fill = char::from(b'a' + u8::try_from(n % 26).unwrap());
    r.access_token = Some(SecretString::from(fill.to_string().repeat(len)));
    r.extra.insert("n".into(), serde_json::json!(n));
    r
}

/// Checks a loaded record is exactly `record(n)` for its own `n`; returns `n`.
fn generation(r: &SessionRecord) -> u64 {
    let n = r.extra["n"].as_u64().expect("n is a number");
    let want = record(n);
    assert_eq!(r.username, want.username, "username of generation {n}");
    assert_eq!(
        r.access_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        want.access_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        "token of generation {n}"
    );
    n
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// The child's part: keep writing the next generation until killed.
fn write_forever(path: &Path) -> ! {
    runtime().block_on(async {
        let store = FileStore::new(path).unwrap();
        let mut announced = false;
        loop {
            let current = store.load(KEY).await.unwrap();
            let (n, mode) = match current {
                Some(v) => (generation(&v.record) + 1, SaveMode::Update(v.version)),
                None => (1, SaveMode::Create),
            };
            store.save(KEY, &record(n), mode).await.unwrap();
            if !announced {
                println!("{WRITING}");
                announced = true;
            }
        }
    })
}

fn random_below(n: u64) -> u64 {
    RandomState::new().hash_one(Instant::now()) % n
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp-")
        })
        .count()
}

#[test]
fn killed_writer_never_tears_the_file() {
    if let Some(path) = std::env::var_os(CHILD) {
        write_forever(&PathBuf::from(path));
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.json");
    let store = FileStore::new(&path).unwrap();
    let rt = runtime();

    let mut last = 0u64;
    let mut advanced = 0usize;
    let mut killed_mid_write = 0usize;
    for i in 0..ITERATIONS {
        let mut child = child::spawn_self("killed_writer_never_tears_the_file", CHILD, &path);
        // Wait until the writer is writing (however slow the machine), then
        // let it run for a random moment and kill it.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let started = stdout
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(WRITING));
        assert!(started, "iteration {i}: the writer died before writing");
        std::thread::sleep(Duration::from_micros(random_below(8_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "iteration {i}: the writer exited on its own: {status}"
        );

        if temp_files(dir.path()) > 0 {
            killed_mid_write += 1;
        }
        let loaded = rt
            .block_on(store.load(KEY))
            .unwrap_or_else(|e| panic!("iteration {i}: the file is unreadable: {e}"));
        if let Some(v) = loaded {
            let n = generation(&v.record);
            assert!(
                n >= last,
                "iteration {i}: went back from generation {last} to {n}"
            );
            if n > last {
                advanced += 1;
            }
            last = n;
        }
    }
    eprintln!(
        "{ITERATIONS} kills: the writer advanced in {advanced}, was killed mid-write (temporary \
         file left) {killed_mid_write} times, reached generation {last}"
    );
    assert!(
        advanced >= ITERATIONS / 4,
        "the writer hardly wrote: the test proves nothing"
    );
    assert!(
        killed_mid_write > 0,
        "no kill landed mid-write: the test proves nothing"
    );

    // The next write cleans up what the killed writers left behind.
    let v = rt.block_on(store.load(KEY)).unwrap().unwrap();
    rt.block_on(store.save(KEY, &record(last + 1), SaveMode::Update(v.version)))
        .unwrap();
    assert_eq!(temp_files(dir.path()), 0);
}
