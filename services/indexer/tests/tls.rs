//! TLS to the tests' PostgreSQL server, which serves TLS (`./scripts/test-all.sh` starts its
//! throwaway server with `ssl = on` and a self-signed certificate naming localhost, made for the
//! run).

use std::path::PathBuf;

use deadpool_postgres::{Pool, PoolError};
use rsky_indexer::db;

/// The tests' server, with `params` appended to the URL's query.
fn url_with(params: &str) -> String {
    let url = rsky_testkit::support::pg_admin_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// Whether the pool's connection runs over TLS, as the server sees it.
async fn over_tls(pool: &Pool) -> bool {
    let client = pool.get().await.expect("a connection");
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    row.get(0)
}

/// A CA of our own, which signed nothing the server holds, as a PEM file.
fn unrelated_ca() -> PathBuf {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "rsky test CA that signed nothing",
    );
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    let path = std::env::temp_dir().join(format!("rsky-tls-test-ca-{}.pem", std::process::id()));
    std::fs::write(&path, cert.pem()).expect("write CA");
    path
}

#[tokio::test]
async fn require_connects_over_tls() {
    let pool = db::pool(&url_with("sslmode=require"), 1).expect("pool");
    assert!(
        over_tls(&pool).await,
        "sslmode=require: pg_stat_ssl.ssl is false"
    );
}

#[tokio::test]
async fn prefer_uses_tls_when_the_server_offers_it() {
    let pool = db::pool(&url_with("sslmode=prefer"), 1).expect("pool");
    assert!(
        over_tls(&pool).await,
        "sslmode=prefer: pg_stat_ssl.ssl is false"
    );
}

#[tokio::test]
async fn disable_connects_in_clear() {
    let pool = db::pool(&url_with("sslmode=disable"), 1).expect("pool");
    assert!(
        !over_tls(&pool).await,
        "sslmode=disable: pg_stat_ssl.ssl is true"
    );
}

#[tokio::test]
async fn verify_full_with_a_wrong_ca_fails_naming_the_cause() {
    let ca = unrelated_ca();
    let pool = db::pool(
        &url_with(&format!("sslmode=verify-full&sslrootcert={}", ca.display())),
        1,
    )
    .expect("pool");
    let result = pool.get().await;
    let _ = std::fs::remove_file(&ca);
    let err = match result {
        Ok(_) => panic!("sslmode=verify-full with an unrelated CA connected"),
        Err(PoolError::Backend(e)) => db::describe(&e),
        Err(other) => panic!("expected a TLS failure, got {other}"),
    };
    let expected = format!(
        "sslmode=verify-full: the server's certificate is refused: it is not signed by a CA in sslrootcert={} (UnknownIssuer)",
        ca.display()
    );
    assert!(err.starts_with("error performing TLS handshake: "), "{err}");
    assert!(err.contains(&expected), "{err}");
}

#[tokio::test]
async fn verify_ca_accepts_the_servers_own_certificate_and_verify_full_checks_the_host() {
    // The server's certificate is self-signed (the test command's, or Debian's snakeoil): it is
    // its own CA.
    let cert_file: String = {
        let pool = db::pool(&url_with("sslmode=require"), 1).expect("pool");
        let client = pool.get().await.expect("a connection");
        client
            .query_one("SELECT current_setting('ssl_cert_file')", &[])
            .await
            .expect("ssl_cert_file")
            .get(0)
    };
    let cert_file = std::path::Path::new(&cert_file);
    assert!(
        cert_file.is_absolute() && cert_file.exists(),
        "the server's certificate {cert_file:?} is not readable here"
    );
    let root = format!("sslrootcert={}", cert_file.display());
    let pool = db::pool(&url_with(&format!("sslmode=verify-ca&{root}")), 1).expect("pool");
    assert!(over_tls(&pool).await);

    // The certificate names localhost (or the machine), not 127.0.0.1.
    let pool = db::pool(&url_with(&format!("sslmode=verify-full&{root}")), 1).expect("pool");
    let err = match pool.get().await {
        Ok(_) => panic!("sslmode=verify-full connected to a host its certificate does not name"),
        Err(PoolError::Backend(e)) => db::describe(&e),
        Err(other) => panic!("expected a TLS failure, got {other}"),
    };
    assert!(err.contains("it is not issued for the host"), "{err}");
}
