//! A `rediss://` store behind a private CA, trusted with `--ca-cert`.

use arcgis_auth_storage::test_util::{RedisServer, TlsRedisServer};

use crate::support::{Setup, one_line_error};

#[tokio::test(flavor = "multi_thread")]
async fn ca_cert_trusts_a_rediss_store_behind_a_private_ca() {
    let Some(redis) = TlsRedisServer::for_test("ca_cert_trusts_a_rediss_store_behind_a_private_ca")
    else {
        return;
    };
    let mut s = Setup::start().await;
    s.store = redis.url().to_owned();
    let write = |name: &str, pem: &[u8]| {
        let path = s.dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_string_lossy().into_owned()
    };
    let ca = write("redis-ca.pem", redis.ca_pem());
    let other_ca = write("other-ca.pem", redis.other_ca_pem());
    let profile = RedisServer::unique_prefix();

    // Without the CA, and with another CA: refused, naming --ca-cert, exit 5.
    for extra in [&[][..], &["--ca-cert", other_ca.as_str()][..]] {
        let out = s
            .command(&[extra, &["--profile", &profile, "status"]].concat())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{extra:?}");
        let err = one_line_error(&out);
        assert!(
            err.contains("certificate was refused") && err.contains("--ca-cert"),
            "{extra:?}: {err}"
        );
    }

    // With it: a session is kept in the store and read back.
    let signed_in = |args: &[&str]| {
        let out = s
            .command(&[&["--ca-cert", ca.as_str(), "--profile", &profile][..], args].concat())
            .env(
                "ARCGIS_CLIENT_SECRET",
                arcgis_auth_testkit::CONFIDENTIAL_CLIENT_SECRET,
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    signed_in(&[
        "login",
        "app",
        "--client-id",
        arcgis_auth_testkit::CONFIDENTIAL_CLIENT_ID,
    ]);
    let token = signed_in(&["token"]);
    assert!(s.is_app_token(token.trim_end()), "{token}");
    signed_in(&["logout"]);
}
