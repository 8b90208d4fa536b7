//! `--help` for every command: the manual, pinned as snapshots.

use crate::support::Setup;

#[tokio::test(flavor = "multi_thread")]
async fn every_command_has_a_manual_page() {
    let s = Setup::start().await;
    let pages: &[&[&str]] = &[
        &[],
        &["login"],
        &["login", "app"],
        &["login", "user"],
        &["login", "password"],
        &["login", "pki"],
        &["login", "basic"],
        &["probe"],
        &["token"],
        &["request"],
        &["status"],
        &["logout"],
        &["profiles"],
    ];
    for args in pages {
        let mut cmd = s.base();
        cmd.args(*args).arg("--help");
        let out = assert_cmd::Command::from_std(cmd)
            .assert()
            .success()
            .stderr("")
            .get_output()
            .clone();
        let page = String::from_utf8(out.stdout).unwrap();
        // Prose, not just a list of flags.
        assert!(page.len() > 400, "{args:?}: {page}");
        let name = if args.is_empty() {
            "help".to_owned()
        } else {
            format!("help-{}", args.join("-"))
        };
        insta::assert_snapshot!(name, page);
    }
}
