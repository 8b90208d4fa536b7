//! [`FileStore`]: sessions in one JSON file, shared safely by several processes.
//!
//! Next to the store file `sessions.json` live:
//!
//! - `sessions.json.lock`, an empty file every operation locks with the OS file
//!   lock (shared for reads, exclusive for writes), so processes take turns;
//! - `sessions.json.leases`, the held refresh locks with their wall-clock expiry;
//! - briefly, `.sessions.json.tmp-<random>`, the next version being written.
//!
//! Every write goes to a fresh temporary file in the same directory, which is
//! flushed to disk and then renamed over the store file, and the directory is
//! flushed too: a crash at any point leaves either the old or the new file,
//! never a torn one. Temporary files left by a crashed writer are removed by
//! the next write.//!
//! | module | holds |
//! |---|---|
//! | `builder` | [`FileStoreBuilder`]: the file, the clock and the poll interval |
//! | `store` | [`FileStore`] and its `SessionStore` and `RefreshLock` implementations |
//! | `paths` | the store file's companions, read and written under the OS file lock |
//! | `document` | the JSON document format and its checks |
//! | `fs` | file primitives: private files, atomic replacement, links |
//! | `watch` | the watcher that reports other processes' writes |

mod builder;
mod document;
mod fs;
mod paths;
mod store;
mod watch;

pub use builder::FileStoreBuilder;
pub use store::FileStore;
