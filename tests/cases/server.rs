//! Faults of a whole PostgreSQL server under a cluster of daemons, on a
//! server of the test's own (`PrivateServer`): a restart with an outage
//! longer than the lease time, during a backlog and with changes arriving.

use bus_tests::postgres::PrivateServer;
use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn users() -> Value {
    json!({"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}], "sleep_ms": 5})
}

fn queued(d: &Daemon) -> Option<i64> {
    let r = d.get("/api/tasks/outgoing/count");
    (r.status == 200).then(|| r.body["count"].as_i64()).flatten()
}

/// Posts a change, again while the server is away (503), until it is taken.
fn create_until_taken(d: &Daemon, code_name: &str) {
    wait_for("the change to be taken", WAIT, || {
        let r = d.post("/api/objects/cms.user", &json!({"code_name": code_name}));
        assert!(r.status == 201 || r.status == 503, "{}: {}", r.status, r.text);
        (r.status == 201).then_some(())
    });
}

#[test]
fn a_server_restart_heals_every_session_and_no_call_outlives_its_lease() {
    let server = PrivateServer::start(&[]);
    let env = TestEnv::on_server(&server);
    env.configure_section("cluster", "lease_ttl_ms = 2000");
    env.scripted("A", users());
    env.scripted("B", users());
    let daemons: Vec<Daemon> = (0..2).map(|_| env.start()).collect();
    wait_for("each daemon to run a connector", WAIT, || {
        daemons
            .iter()
            .all(|d| d.get("/health").body["cluster"]["leases"].as_array().is_some_and(|l| l.len() == 1))
            .then_some(())
    });
    for i in 0..300 {
        create_until_taken(&daemons[i % 2], &format!("before{i:03}"));
    }
    wait_for("deliveries to be under way", WAIT, || (env.calls("A").len() >= 30).then_some(()));

    // The server goes away for longer than the lease time (every session
    // ends with it), then comes back.
    server.stop();
    for d in &daemons {
        for route in ["/api/connectors", "/api/tasks/outgoing", "/api/cluster", "/api/eventlog"] {
            let r = d.get(route);
            assert_eq!(r.status, 503, "a read during the outage ({route}) says the database is away: {}", r.text);
            assert!(r.body["error"].as_str().unwrap().contains("cannot be reached"), "{route}: {}", r.text);
        }
        let w = d.post("/api/objects/cms.user", &json!({"code_name": "during"}));
        assert_eq!(w.status, 503, "{}", w.text);
    }
    wait_for("the daemons to say they are not ready", WAIT, || {
        daemons.iter().all(|d| d.get("/health?probe=ready").status == 503).then_some(())
    });
    std::thread::sleep(Duration::from_millis(2500)); // the outage outlasts the 2 s leases
    server.start_again();

    for i in 0..100 {
        create_until_taken(&daemons[i % 2], &format!("after{i:03}"));
    }
    wait_for("both queues to drain", WAIT, || daemons.iter().all(|d| queued(d) == Some(0)).then_some(()));
    for name in ["A", "B"] {
        let all = env.calls(name);
        let distinct: BTreeSet<i64> = all.iter().map(|(_, _, id)| *id).collect();
        assert_eq!(distinct.len(), 400, "{name}: every acknowledged change delivered");
        assert!(all.len() - distinct.len() <= 2, "{name}: {} repeats", all.len() - distinct.len());
        bus_tests::daemon::assert_fenced_in_call_order(&all, name);
    }
    for d in &daemons {
        let health = wait_for("each daemon to be ready again", WAIT, || {
            let h = d.get("/health?probe=ready");
            (h.status == 200).then_some(h)
        });
        assert!(health.body["connectors"]["A"]["stalled"].is_null(), "{}", health.text);
    }
}

#[test]
fn a_server_at_its_connection_limit_slows_the_cluster_down_but_never_wedges_it() {
    // 16 sessions in all: two daemons' long-lived sessions take 10 of them;
    // their workers (six, for three connectors), ticks, requests and this
    // test's reads share the rest — as long as a quiet daemon gives back
    // what it does not use (an idle worker holds none, an idle pooled
    // session is closed after two seconds).
    let server = PrivateServer::start(&["max_connections=16"]);
    let env = TestEnv::on_server(&server);
    env.configure_section("cluster", "lease_ttl_ms = 2000");
    for name in ["A", "B", "C"] {
        env.scripted(name, users());
    }
    let daemons: Vec<Daemon> = (0..2).map(|_| env.start()).collect();
    wait_for("the connectors to be spread", WAIT, || {
        let held: usize =
            daemons.iter().map(|d| d.get("/health").body["cluster"]["leases"].as_array().map_or(0, Vec::len)).sum();
        (held == 3).then_some(())
    });
    for i in 0..150 {
        create_until_taken(&daemons[i % 2], &format!("u{i:03}"));
    }
    wait_for("every queue to drain", WAIT, || daemons.iter().all(|d| queued(d) == Some(0)).then_some(()));
    for name in ["A", "B", "C"] {
        let distinct: BTreeSet<i64> = env.calls(name).iter().map(|(_, _, id)| *id).collect();
        assert_eq!(distinct.len(), 150, "{name}: every change delivered");
    }
    for d in &daemons {
        let h = wait_for("each daemon to be ready", WAIT, || {
            let h = d.get("/health?probe=ready");
            (h.status == 200).then_some(h)
        });
        assert!(h.body["cluster"]["error"].is_null(), "{}", h.text);
    }
}

#[test]
fn a_frozen_server_gets_answers_in_bounded_time_and_the_daemon_recovers_when_it_thaws() {
    let server = PrivateServer::start(&[]);
    let mut env = TestEnv::on_server(&server);
    // The server's own statement limit, 2 s: the client gives up a second
    // after it (the server cannot enforce it while frozen).
    let bus_core::db::Location::Postgres(url) = env.database.clone() else { unreachable!() };
    env.use_database(bus_core::db::Location::Postgres(format!("{url}?options=-c%20statement_timeout%3D2000")));
    env.configure_section("cluster", "lease_ttl_ms = 2000");
    env.scripted("A", users());
    let d = env.start();
    create_until_taken(&d, "before");
    wait_for("the first delivery", WAIT, || (env.calls("A").len() == 1).then_some(()));

    // Every process of the server stops: connections stay open, nothing
    // answers. Writes and reads get an answer anyway (the test's client
    // waits at most 30 s for one; without deadlines they would wait until
    // the thaw below).
    server.freeze();
    let write = d.post("/api/objects/cms.user", &json!({"code_name": "frozen"}));
    assert_eq!(write.status, 503, "{}", write.text);
    let read = d.get("/api/connectors");
    assert_eq!(read.status, 503, "{}", read.text);
    wait_for("the daemon to say it is not ready", WAIT, || (d.get("/health?probe=ready").status == 503).then_some(()));
    server.thaw();

    create_until_taken(&d, "after");
    wait_for("the queue to drain", WAIT, || (queued(&d) == Some(0)).then_some(()));
    let delivered: BTreeSet<i64> = env.calls("A").iter().map(|(_, _, id)| *id).collect();
    let names: Vec<String> = d.get("/api/objects/cms.user").body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code_name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"before".to_owned()) && names.contains(&"after".to_owned()), "{names:?}");
    // The write that got 503 is either whole (object, task, delivery) or absent.
    assert_eq!(delivered.len(), names.len(), "every stored change delivered once: {names:?}");
    wait_for("the daemon to be ready again", WAIT, || (d.get("/health?probe=ready").status == 200).then_some(()));
}

/// TLS to the server as libpq's URL parameters say (shared/DESIGN.md
/// "PostgreSQL connection security"): `verify-full` checks the chain and the
/// server's name, `verify-ca` the chain only; a certificate from another CA,
/// or for another name under `verify-full`, is refused before a byte of the
/// bus's data crosses, with an error that says which.
#[test]
fn tls_to_the_server_checks_the_ca_and_the_name_as_libpq_does() {
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = bus_tests::tls::issue_for(certs_dir.path(), "DNS:db.bus.test");
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = bus_tests::tls::issue_for(other_dir.path(), "DNS:db.bus.test").ca;
    let server = PrivateServer::start_with_tls(&certs);
    let port = server.port();
    let url = |host: &str, database: &str, query: String| {
        format!("postgres://postgres@{host}:{port}/{database}?hostaddr=127.0.0.1&{query}")
    };
    let opens = |u: &str| bus_core::db::Database::open_at(&bus_core::db::Location::parse(u)).map(drop);

    // verify-full: the daemon serves over TLS, its sessions encrypted.
    let mut db = server.database();
    let name = db.name.clone();
    db.url = url("db.bus.test", &name, format!("sslmode=verify-full&sslrootcert={}", certs.ca.display()));
    let env = TestEnv::on_database(db);
    env.scripted("A", users());
    let d = env.start();
    let r = d.post("/api/objects/cms.user", &json!({"code_name": "over-tls"}));
    assert_eq!(r.status, 201, "{}", r.text);
    wait_for("the delivery", WAIT, || (env.calls("A").len() == 1).then_some(()));
    let admin =
        bus_core::sql::Conn::postgres(&format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"))
            .unwrap();
    let (tls, plain): (i64, i64) = admin
        .query_row(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
            [&name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(tls > 0 && plain == 0, "every session of the daemon is encrypted: {tls} with TLS, {plain} without");

    // verify-ca does not check the name; verify-full does.
    let ca = certs.ca.display();
    opens(&url("127.0.0.1", &name, format!("sslmode=verify-ca&sslrootcert={ca}"))).expect("verify-ca ignores the name");
    let err = opens(&url("127.0.0.1", &name, format!("sslmode=verify-full&sslrootcert={ca}"))).unwrap_err().to_string();
    assert!(err.contains("TLS") && err.contains("not valid for name"), "a wrong name says so: {err}");
    // Another CA is refused whatever the mode that checks.
    for mode in ["verify-ca", "verify-full"] {
        let u = url("db.bus.test", &name, format!("sslmode={mode}&sslrootcert={}", other_ca.display()));
        let err = opens(&u).unwrap_err().to_string();
        assert!(err.contains("TLS") && err.contains("invalid peer certificate"), "{mode}, another CA: {err}");
    }
    // Bad settings are named before any connection.
    let err = opens(&url("db.bus.test", &name, "sslmode=verify_full".into())).unwrap_err().to_string();
    assert!(err.contains("sslmode `verify_full` is not one of"), "{err}");
    let missing = certs_dir.path().join("missing.pem");
    let err = opens(&url("db.bus.test", &name, format!("sslmode=verify-full&sslrootcert={}", missing.display())))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sslrootcert") && err.contains("missing.pem"), "{err}");
}
