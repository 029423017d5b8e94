//! Table tests of replica URL parsing (spec §7.4) and its helpers.

use super::*;

fn s3(url: &str) -> S3Target {
    match parse_replica_url(url) {
        Ok(ReplicaTarget::S3(t)) => t,
        other => panic!("{url}: expected s3 target, got {other:?}"),
    }
}

#[test]
fn is_url_matches_word_then_scheme_separator() {
    for yes in ["s3://b", "file:///x", "abc_1://", "x://"] {
        assert!(is_url(yes), "{yes}");
    }
    for no in [
        "",
        "/data/x",
        "://x",
        "s3:/b",
        "s3:b",
        "my-scheme://x",
        "C:\\x",
        "é://x",
    ] {
        assert!(!is_url(no), "{no}");
    }
}

#[test]
fn s3_host_patterns() {
    struct Case {
        url: &'static str,
        bucket: &'static str,
        region: Option<&'static str>,
        endpoint: Option<&'static str>,
        path_style: bool,
        path: &'static str,
    }
    let cases = [
        Case {
            url: "s3://mybkt.localhost:9000/db",
            bucket: "mybkt",
            region: Some("us-east-1"),
            endpoint: Some("http://localhost:9000"),
            path_style: true,
            path: "db",
        },
        Case {
            url: "s3://mybkt.localhost/db",
            bucket: "mybkt",
            region: Some("us-east-1"),
            endpoint: Some("http://localhost"),
            path_style: true,
            path: "db",
        },
        Case {
            url: "s3://mybkt.s3.us-west-002.backblazeb2.com/x/y",
            bucket: "mybkt",
            region: Some("us-west-002"),
            endpoint: Some("https://s3.us-west-002.backblazeb2.com"),
            path_style: true,
            path: "x/y",
        },
        Case {
            url: "s3://mybkt.s3.filebase.com/p",
            bucket: "mybkt",
            region: None,
            endpoint: Some("https://s3.filebase.com"),
            path_style: true,
            path: "p",
        },
        Case {
            url: "s3://mybkt.nyc3.digitaloceanspaces.com/p",
            bucket: "mybkt",
            region: Some("nyc3"),
            endpoint: Some("https://nyc3.digitaloceanspaces.com"),
            path_style: true,
            path: "p",
        },
        Case {
            url: "s3://mybkt.s3.fr-par.scw.cloud/p",
            bucket: "mybkt",
            region: Some("fr-par"),
            endpoint: Some("https://s3.fr-par.scw.cloud"),
            path_style: true,
            path: "p",
        },
        Case {
            url: "s3://mybkt.us-east-1.linodeobjects.com:8443/p",
            bucket: "mybkt",
            region: Some("us-east-1"),
            endpoint: Some("https://us-east-1.linodeobjects.com:8443"),
            path_style: true,
            path: "p",
        },
        Case {
            url: "s3://minio.example.com:9000/db",
            bucket: "minio.example.com",
            region: None,
            endpoint: None,
            path_style: false,
            path: "db",
        },
        Case {
            url: "s3://bkt/path/to/db/",
            bucket: "bkt",
            region: None,
            endpoint: None,
            path_style: false,
            path: "path/to/db",
        },
        Case {
            url: "s3://bkt",
            bucket: "bkt",
            region: None,
            endpoint: None,
            path_style: false,
            path: "",
        },
        Case {
            url: "s3://bkt//a/./b/../c?versionId=1#frag",
            bucket: "bkt",
            region: None,
            endpoint: None,
            path_style: false,
            path: "a/c",
        },
        Case {
            url: "S3://bkt/a%20b",
            bucket: "bkt",
            region: None,
            endpoint: None,
            path_style: false,
            path: "a b",
        },
    ];
    for c in cases {
        let t = s3(c.url);
        assert_eq!(t.bucket, c.bucket, "{}", c.url);
        assert_eq!(t.region.as_deref(), c.region, "{}", c.url);
        assert_eq!(t.endpoint.as_deref(), c.endpoint, "{}", c.url);
        assert_eq!(t.force_path_style, c.path_style, "{}", c.url);
        assert_eq!(t.path, c.path, "{}", c.url);
        assert_eq!(
            (t.access_key_id, t.secret_access_key),
            (None, None),
            "pure: {}",
            c.url
        );
    }
}

#[test]
fn file_urls_are_cleaned() {
    let cases: &[(&str, &str)] = &[
        ("file:///data/x/../y/", "/data/y"),
        ("file:///backups/db", "/backups/db"),
        // Go keeps the "host" as the first path element.
        ("file://data/replica", "/data/replica"),
        ("file:///a%20b", "/a b"),
    ];
    for (url, want) in cases {
        assert_eq!(
            parse_replica_url(url).expect(url),
            ReplicaTarget::File {
                path: PathBuf::from(want)
            },
            "{url}"
        );
    }
}

#[test]
fn gcs_and_abs_urls() {
    let want_gcs = ReplicaTarget::Gcs(GcsTarget {
        bucket: "bkt".into(),
        path: "db/x".into(),
        emulator_host: None,
    });
    assert_eq!(parse_replica_url("gcs://bkt/db/x/").expect("gcs"), want_gcs);
    assert_eq!(
        parse_replica_url("gs://bkt//db/x").expect("gs alias"),
        want_gcs
    );

    let abs = parse_replica_url("abs://acct@container/db").expect("abs");
    assert_eq!(
        abs,
        ReplicaTarget::Abs(AbsTarget {
            account_name: Some("acct".into()),
            bucket: "container".into(),
            path: "db".into(),
            ..AbsTarget::default()
        })
    );
    let abs = parse_replica_url("abs://container").expect("abs without account");
    assert_eq!(
        abs,
        ReplicaTarget::Abs(AbsTarget {
            bucket: "container".into(),
            ..AbsTarget::default()
        })
    );
}

#[test]
fn url_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "sftp://bob:hunter2@host:2222/backups",
            "sftp replicas are not supported by walstream: sftp://bob@host:2222/backups",
        ),
        (
            "ftp://host/x",
            "unknown replica url scheme \"ftp\" in ftp://host/x (supported: file, s3, gcs, abs)",
        ),
        (
            "/data/replica",
            "replica url scheme required: /data/replica",
        ),
        (
            "s3://localhost:9000/db",
            "bucket required for s3 replica: s3://localhost:9000/db",
        ),
        ("gcs:///db", "bucket required for gcs replica: gcs:///db"),
        (
            "abs://acct@/db",
            "bucket required for abs replica: abs://acct@/db",
        ),
        ("file://", "file replica path required: file://"),
        (
            "s3://my bucket/x",
            "invalid replica url s3://my bucket/x: invalid character ' ' in host name",
        ),
        (
            "s3://bkt/%zz",
            "invalid replica url s3://bkt/%zz: invalid URL escape \"%zz\"",
        ),
        (
            "s3://bkt/%4",
            "invalid replica url s3://bkt/%4: invalid URL escape \"%4\"",
        ),
    ];
    for (url, want) in cases {
        let err = parse_replica_url(url).expect_err(url);
        assert_eq!(err.to_string(), *want, "{url}");
    }
}

#[test]
fn password_redaction() {
    let cases: &[(&str, &str)] = &[
        ("sftp://u:p@h/x", "sftp://u@h/x"),
        ("sftp://u@h/x", "sftp://u@h/x"),
        ("sftp://h:22/x:y@z", "sftp://h:22/x:y@z"),
        ("sftp://u:p:q@h", "sftp://u@h"),
        ("not a url", "not a url"),
    ];
    for (input, want) in cases {
        assert_eq!(redact_password(input), *want, "{input}");
    }
}

#[test]
fn split_host_port_like_go() {
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        (":9090", Some(("", "9090"))),
        ("localhost:9090", Some(("localhost", "9090"))),
        ("localhost:", Some(("localhost", ""))),
        ("[::1]:9090", Some(("::1", "9090"))),
        ("localhost", None),
        ("::1", None),
        ("[::1]", None),
        ("a:b:c", None),
    ];
    for (input, want) in cases {
        assert_eq!(split_host_port(input), *want, "{input}");
    }
}
