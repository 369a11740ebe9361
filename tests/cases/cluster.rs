//! Several daemons on one PostgreSQL database (always PostgreSQL, whatever
//! the pass): connectors spread over the daemons, every change reaching
//! every connector once and in commit order through whichever daemon it
//! entered, a killed daemon's connectors taken over, registry edits made
//! with plain SQL seen by all, the scheduled task run once per due time,
//! and synchronous subscriptions served through the daemon that runs them.

use bus_tests::daemon::Backend;
use bus_tests::{wait_for, Daemon, TestEnv};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn users(process_type: &str) -> Value {
    json!({"process_type": process_type, "scope": "objects", "object_type": "cms.user"})
}

/// A PostgreSQL environment whose leases last `ttl_ms`. A killed daemon
/// is noticed at once through its database session; the lease time bounds
/// a daemon that hangs or loses the server.
fn cluster_env(ttl_ms: u64) -> TestEnv {
    let env = TestEnv::with_backend(Backend::Postgres);
    env.configure_section("cluster", &format!("lease_ttl_ms = {ttl_ms}"));
    env
}

/// Which daemon runs each connector (by connector name), once every enabled
/// connector runs somewhere and no daemon holds more than its share.
fn placement(d: &Daemon, connectors: usize, daemons: usize) -> BTreeMap<String, String> {
    wait_for("the connectors to be spread over the daemons", WAIT, || {
        let view = d.get("/api/cluster").body;
        let alive: Vec<&Value> = view["daemons"].as_array()?.iter().filter(|d| d["alive"] == true).collect();
        if alive.len() != daemons {
            return None;
        }
        let share = connectors.div_ceil(daemons);
        let mut owners = BTreeMap::new();
        for daemon in &alive {
            let held = daemon["connectors"].as_array()?;
            if held.len() > share {
                return None;
            }
            for c in held {
                owners.insert(c.as_str()?.to_owned(), daemon["id"].as_str()?.to_owned());
            }
        }
        (owners.len() == connectors).then_some(owners)
    })
}

/// Waits until every daemon knows where each connector runs: loaded here
/// by its owner, running elsewhere (with the owner's name) on the others.
fn settled(daemons: &[&Daemon], owners: &BTreeMap<String, String>) {
    for d in daemons {
        let me = id_of(d);
        wait_for("every daemon to know where each connector runs", WAIT, || {
            owners
                .iter()
                .all(|(name, owner)| {
                    d.connector(name).is_some_and(|c| {
                        if *owner == me {
                            c["loaded"] == true
                        } else {
                            c["running_on"] == owner.as_str()
                        }
                    })
                })
                .then_some(())
        });
    }
}

/// Each daemon's ID, as `/api/cluster` names it.
fn id_of(d: &Daemon) -> String {
    d.get("/api/cluster").body["this_daemon"].as_str().unwrap().to_owned()
}

/// The tasks a connector reported (ID, code name), in the order it
/// processed them (read from the shared event log, all of them).
fn reported(env: &TestEnv, connector: &str) -> Vec<(i64, String)> {
    let sql = env.sql();
    let mut stmt = sql.prepare("SELECT Description FROM CMS_EventLog WHERE Source = $1 ORDER BY EventID").unwrap();
    stmt.query_map([connector], |r| r.get::<String>(0))
        .unwrap()
        .filter_map(|d| {
            let report = serde_json::from_str::<Value>(&d.unwrap()).ok()?;
            Some((report["task_id"].as_i64()?, report["name"].as_str()?.to_owned()))
        })
        .collect()
}

fn delivered(env: &TestEnv, connector: &str) -> Vec<i64> {
    reported(env, connector).into_iter().map(|(id, _)| id).collect()
}

fn waiting(d: &Daemon) -> i64 {
    d.get("/api/tasks/outgoing/count").body["count"].as_i64().unwrap()
}

#[test]
fn a_killed_daemon_hands_its_connectors_over_and_nothing_is_lost_or_reordered() {
    // Long leases: only the kill moves a connector, however loaded the
    // machine (its session ends with it, which frees its leases at once).
    let env = cluster_env(10_000);
    let names = ["A", "B", "C"];
    for name in names {
        env.scripted(name, json!({"sleep_ms": 3, "subscriptions": [users("AsyncSimple")]}));
    }
    let daemons: Vec<Daemon> = (0..3).map(|_| env.start()).collect();
    let owners = placement(&daemons[0], 3, 3);
    settled(&daemons.iter().collect::<Vec<_>>(), &owners);
    let ids: Vec<String> = daemons.iter().map(id_of).collect();
    // The daemon running A is killed mid-drain; changes keep arriving
    // through the other two.
    let victim = ids.iter().position(|id| *id == owners["A"]).unwrap();
    let entries: Vec<String> =
        daemons.iter().enumerate().filter(|(i, _)| *i != victim).map(|(_, d)| d.addr.clone()).collect();
    let producers: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(p, addr)| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                for i in 0..400 {
                    let body = json!({"code_name": format!("p{p}u{i:04}")});
                    let r = bus_tests::http::request(&addr, "POST", "/api/objects/cms.user", Some(&body));
                    assert_eq!(r.status, 201, "{}", r.text);
                }
            })
        })
        .collect();
    wait_for("deliveries to be under way", WAIT, || (delivered(&env, "A").len() >= 100).then_some(()));
    let mut daemons = daemons;
    daemons.remove(victim).kill();
    let killed = std::time::Instant::now();
    let survivor = &daemons[0];
    let after = placement(survivor, 3, 2);
    assert_ne!(after["A"], owners["A"], "A moved to a living daemon");
    // Its session ended with it, which freed its leases: no waiting for
    // the 10 s lease to expire.
    assert!(killed.elapsed() < Duration::from_secs(9), "taken over after {:?}", killed.elapsed());
    for p in producers {
        p.join().unwrap();
    }
    wait_for("every queue to drain", WAIT, || (waiting(survivor) == 0).then_some(()));
    let tasks: i64 =
        env.sql().query_row("SELECT COUNT(*) FROM CMS_Object WHERE ObjectType = 'cms.user'", [], |r| r.get(0)).unwrap();
    assert_eq!(tasks, 800, "every acknowledged change is stored");
    let mut repeats = 0;
    let mut per_connector = BTreeMap::new();
    for name in names {
        let reports = reported(&env, name);
        // Each producer sent its changes one after the other (each after the
        // previous one committed): they reach every connector in that order,
        // whichever daemon they entered and whichever daemon delivered them.
        // (Changes committed at the same time on two daemons have no order.)
        for p in 0..2 {
            let mut seen = BTreeSet::new();
            let sequence: Vec<usize> = reports
                .iter()
                .filter_map(|(id, n)| n.strip_prefix(&format!("p{p}u"))?.parse().ok().map(|i: usize| (*id, i)))
                .filter(|(id, _)| seen.insert(*id))
                .map(|(_, i)| i)
                .collect();
            assert!(sequence.windows(2).all(|w| w[0] < w[1]), "{name}: producer {p}'s changes in commit order");
        }
        let ids: Vec<i64> = reports.iter().map(|(id, _)| *id).collect();
        let distinct: BTreeSet<i64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), 800, "{name}: every change delivered");
        repeats += ids.len() - distinct.len();
        let mut seen = BTreeSet::new();
        let repeated: Vec<i64> = ids.iter().copied().filter(|id| !seen.insert(*id)).collect();
        per_connector.insert(name, repeated);
    }
    assert!(
        repeats <= 1,
        "at most the task in flight at the kill is repeated: {per_connector:?} (A ran on the killed daemon)"
    );
    env.check_integrity();
}

#[test]
fn a_registry_edit_made_with_plain_sql_is_seen_by_every_daemon() {
    let env = cluster_env(3000);
    env.scripted("A", json!({"subscriptions": [users("AsyncSimple")]}));
    env.scripted("B", json!({"subscriptions": [users("AsyncSimple")]}));
    let daemons: Vec<Daemon> = (0..2).map(|_| env.start()).collect();
    let owners = placement(&daemons[0], 2, 2);
    assert_ne!(owners["A"], owners["B"], "one connector each");
    settled(&daemons.iter().collect::<Vec<_>>(), &owners);
    for d in &daemons {
        // Each daemon says what it holds; a connector running elsewhere
        // does not make it unready.
        let health = d.get("/health?probe=ready");
        assert_eq!(health.status, 200, "{}", health.text);
        assert_eq!(health.body["cluster"]["leases"].as_array().unwrap().len(), 1, "{}", health.text);
        let metrics = d.get("/metrics").text;
        assert!(metrics.contains("bus_cluster_leases_held 1"), "{metrics}");
        let view = d.get("/api/cluster").body;
        assert_eq!(view["leases"].as_array().unwrap().len(), 4, "two connectors, two directions each: {view}");
    }
    env.sql().execute("UPDATE Integration_Connector SET ConnectorEnabled = 0 WHERE ConnectorName = 'A'", []).unwrap();
    for d in &daemons {
        wait_for("every daemon to see A disabled", Duration::from_secs(15), || {
            let a = d.connector("A")?;
            (a["enabled"] == false && a["loaded"] == false && a["running_on"].is_null()).then_some(())
        });
    }
    env.sql().execute("UPDATE Integration_Connector SET ConnectorEnabled = 1 WHERE ConnectorName = 'A'", []).unwrap();
    let owners = placement(&daemons[0], 2, 2);
    settled(&daemons.iter().collect::<Vec<_>>(), &owners);
    // A change entering either daemon reaches both connectors.
    daemons[0].create("cms.user", json!({"code_name": "one"}));
    daemons[1].create("cms.user", json!({"code_name": "two"}));
    for name in ["A", "B"] {
        wait_for("both changes to reach both connectors", WAIT, || (delivered(&env, name).len() == 2).then_some(()));
    }
    // A task is synchronized by the daemon that runs its connector: the
    // other one says where to go, and its "all" covers its own connectors.
    let outsider = daemons.iter().find(|d| id_of(d) != owners["A"]).unwrap();
    let r = outsider.post("/api/tasks/outgoing/synchronize", &json!({"all": true, "connector": "A"}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains(&format!("runs on daemon {}", owners["A"])), "{}", r.text);
    let r = outsider.post("/api/tasks/outgoing/synchronize", &json!({"all": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["outcomes"].as_array().unwrap().iter().all(|o| o["connector"] != "A"), "{}", r.text);
}

#[test]
fn a_synchronous_subscription_is_served_when_the_change_enters_another_daemon() {
    let env = cluster_env(3000);
    env.scripted("Sync", json!({"subscriptions": [users("SyncSnapshot")]}));
    env.scripted("Other", json!({"subscriptions": [users("AsyncSimple")]}));
    let daemons: Vec<Daemon> = (0..2).map(|_| env.start()).collect();
    let owners = placement(&daemons[0], 2, 2);
    settled(&daemons.iter().collect::<Vec<_>>(), &owners);
    let outsider = daemons.iter().find(|d| id_of(d) != owners["Sync"]).unwrap();
    let r = outsider.create("cms.user", json!({"code_name": "routed"}));
    let sync = r["sync"].as_array().unwrap();
    assert_eq!(sync.len(), 1, "{r}");
    assert_eq!(sync[0]["connector"], "Sync");
    assert_eq!(sync[0]["result"], "Ok", "{r}");
    let sql = env.sql();
    let processed: i64 = sql
        .query_row("SELECT COUNT(*) FROM CMS_EventLog WHERE Source = 'Sync' AND EventCode = 'SYNC'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(processed, 1, "processed once, on the daemon that runs it");
}

#[test]
fn the_scheduled_task_runs_once_per_due_time_across_the_daemons() {
    let env = cluster_env(3000);
    env.scripted("A", json!({"subscriptions": []}));
    let daemons: Vec<Daemon> = (0..3).map(|_| env.start()).collect();
    placement(&daemons[0], 1, 3);
    let sql = env.sql();
    let executions = || -> i64 {
        sql.query_row(
            "SELECT TaskExecutions FROM CMS_ScheduledTask WHERE TaskName = 'ProcessExternalIntegrationTasks'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = executions();
    for round in 1..=3 {
        // Due now for every daemon at once.
        sql.execute(
            "UPDATE CMS_ScheduledTask SET TaskNextRun = bus_now() WHERE TaskName = 'ProcessExternalIntegrationTasks'",
            [],
        )
        .unwrap();
        wait_for("the due run", Duration::from_secs(10), || (executions() == before + round).then_some(()));
        // Every daemon's scheduler looks at least twice more (500 ms ticks).
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(executions(), before + round, "run once per due time, not once per daemon");
    }
}

#[test]
fn a_daemon_whose_database_sessions_are_cut_connects_again_and_keeps_delivering() {
    let env = cluster_env(3000);
    env.scripted("A", json!({"subscriptions": [users("AsyncSimple")]}));
    let d = env.start();
    placement(&d, 1, 1);
    d.create("cms.user", json!({"code_name": "before"}));
    wait_for("the first delivery", WAIT, || (delivered(&env, "A").len() == 1).then_some(()));
    // Every session of the daemon ends, as with a server restart.
    let cut: i64 = env
        .sql()
        .query_row(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(cut >= 3, "the daemon's sessions were cut: {cut}");
    // The write that finds its session gone is refused with the reason (503,
    // nothing written); the ones after it work again.
    let mut refusals = Vec::new();
    let created = wait_for("the daemon to write again", Duration::from_secs(30), || {
        let r = d.post("/api/objects/cms.user", &json!({"code_name": "after"}));
        if r.status == 201 {
            return Some(r.body);
        }
        refusals.push((r.status, r.text));
        None
    });
    assert!(refusals.iter().all(|(s, _)| *s == 503), "{refusals:?}");
    assert!(created["queued_for"].as_array().unwrap().contains(&json!("A")), "{created}");
    let deadline = std::time::Instant::now() + WAIT;
    while delivered(&env, "A").len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no delivery after the cut; the daemon's log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let health = d.get("/health?probe=ready");
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.body["cluster"]["leases"].as_array().unwrap().len(), 1, "it still runs A: {}", health.text);
}

#[test]
fn four_connectors_on_three_daemons_leave_none_idle_and_calls_carry_the_lease_epoch() {
    let env = cluster_env(2000);
    let names = ["A", "B", "C", "D"];
    for name in names {
        env.scripted(name, json!({"subscriptions": [users("AsyncSimple")]}));
    }
    let daemons: Vec<Daemon> = (0..3).map(|_| env.start()).collect();
    let ids: Vec<String> = daemons.iter().map(id_of).collect();
    let owners = wait_for("every daemon to run a connector", WAIT, || {
        let owners = placement(&daemons[0], 4, 3);
        let mut counts: Vec<usize> = ids.iter().map(|id| owners.values().filter(|o| *o == id).count()).collect();
        counts.sort_unstable();
        (counts == [1, 1, 2]).then_some(owners)
    });
    settled(&daemons.iter().collect::<Vec<_>>(), &owners);
    daemons[1].create("cms.user", json!({"code_name": "u1"}));
    let leases = daemons[0].get("/api/cluster").body["leases"].clone();
    for name in names {
        wait_for("the change to reach every connector", WAIT, || (delivered(&env, name).len() == 1).then_some(()));
        let epoch =
            leases.as_array().unwrap().iter().find(|l| l["connector"] == name && l["direction"] == "outgoing").unwrap()
                ["epoch"]
                .as_i64();
        assert_eq!(env.calls(name)[0].1, epoch, "{name}: the call carries its lease's epoch");
    }
}

#[test]
fn a_stalled_daemon_makes_no_call_after_its_lease_moved() {
    let env = cluster_env(2000);
    env.scripted("A", json!({"sleep_ms": 15, "subscriptions": [users("AsyncSimple")]}));
    let a = env.start();
    placement(&a, 1, 1);
    let b = env.start();
    let owners = placement(&b, 1, 2);
    assert_eq!(owners["A"], id_of(&a), "a daemon joining takes nothing that need not move");
    settled(&[&a, &b], &owners);
    for i in 0..300 {
        let r = b.post("/api/objects/cms.user", &json!({"code_name": format!("u{i:03}")}));
        assert_eq!(r.status, 201, "{}", r.text);
    }
    wait_for("deliveries to be under way", WAIT, || (delivered(&env, "A").len() >= 20).then_some(()));
    // `a` stalls for three lease times, mid-drain: `b` takes the queue over.
    a.signal(rustix::process::Signal::STOP);
    let moved = placement(&b, 1, 1);
    assert_eq!(moved["A"], id_of(&b));
    wait_for("b to deliver", WAIT, || (delivered(&env, "A").len() >= 120).then_some(()));
    a.signal(rustix::process::Signal::CONT);
    wait_for("the queue to drain", WAIT, || (waiting(&b) == 0).then_some(()));
    let all = env.calls("A");
    let distinct: BTreeSet<i64> = all.iter().map(|(_, _, id)| *id).collect();
    assert_eq!(distinct.len(), 300, "every change delivered");
    assert!(
        all.len() - distinct.len() <= 1,
        "at most the call in flight at the stall repeated: {}",
        all.len() - distinct.len()
    );
    bus_tests::daemon::assert_fenced_in_call_order(&all, "A");
}

#[test]
fn routed_calls_are_signed_never_carry_the_token_and_trust_the_cluster_ca() {
    const TOKEN: &str = "cluster-test-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let certs = bus_tests::tls::issue(dir.path());
    // Whoever can write `Integration_Daemon.DaemonAddress` can point the
    // routed calls anywhere: here, at a server with a private CA's
    // certificate, as the owner of `Sync` advertises it.
    let impostor = bus_tests::hook_server::HookServer::start_tls(&certs.chain, &certs.key);
    let env = TestEnv::with_backend(Backend::Postgres);
    env.configure(&format!("auth_token = \"{TOKEN}\""));
    env.configure_section(
        "cluster",
        &format!("lease_ttl_ms = 3000\naddress = \"{}\"\nca_cert = \"{}\"", impostor.url(""), certs.ca.display()),
    );
    env.scripted("Sync", json!({"subscriptions": [users("SyncSnapshot")]}));
    env.scripted("Other", json!({"subscriptions": [users("AsyncSimple")]}));
    let daemons: Vec<Daemon> = (0..2).map(|_| env.start()).collect();
    let auth = [("authorization", format!("Bearer {TOKEN}"))];
    let get = |d: &Daemon, path: &str| {
        let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        bus_tests::http::request_with(&d.addr, "GET", path, None, "application/json", &headers)
    };
    let owner_of_sync = wait_for("Sync to run on one daemon", WAIT, || {
        daemons.iter().position(|d| {
            serde_json::from_str::<Value>(&get(d, "/health").text).ok().is_some_and(|h| {
                h["connectors"]["Sync"]["loaded"] == true && h["connectors"]["Sync"]["running_on"].is_null()
            })
        })
    });
    let outsider = &daemons[1 - owner_of_sync];
    wait_for("the outsider to know where Sync runs", WAIT, || {
        let c: Value = serde_json::from_str(&get(outsider, "/api/connectors").text).ok()?;
        c.as_array()?.iter().any(|c| c["name"] == "Sync" && c["running_on"].is_string()).then_some(())
    });
    let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = serde_json::to_vec(&json!({"code_name": "routed"})).unwrap();
    let r = bus_tests::http::request_with(
        &outsider.addr,
        "POST",
        "/api/objects/cms.user",
        Some(&body),
        "application/json",
        &headers,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    // The call reached the impostor over TLS with the cluster's CA, signed,
    // and without the token in any form.
    let call = wait_for("the routed call", WAIT, || {
        impostor.posts().into_iter().find(|p| p.path == "/api/cluster/connectors/Sync/call")
    });
    for (name, value) in &call.headers {
        assert!(!value.contains(TOKEN), "the token leaked in `{name}`");
    }
    assert!(!String::from_utf8_lossy(&call.raw).contains(TOKEN));
    let header = |name: &str| call.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let signed: Vec<(&str, String)> = ["x-bus-cluster-from", "x-bus-cluster-time", "x-bus-cluster-signature"]
        .iter()
        .map(|h| (*h, header(h).unwrap_or_else(|| panic!("no {h} header: {:?}", call.headers))))
        .collect();
    // The daemon that runs Sync takes the signed call once, from nobody
    // else and not for the token.
    let owner = &daemons[owner_of_sync];
    let path = "/api/cluster/connectors/Sync/call";
    let as_signed: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first =
        bus_tests::http::request_with(&owner.addr, "POST", path, Some(&call.raw), "application/json", &as_signed);
    assert_eq!(first.status, 200, "{}", first.text);
    let replay =
        bus_tests::http::request_with(&owner.addr, "POST", path, Some(&call.raw), "application/json", &as_signed);
    assert_eq!(replay.status, 401, "{}", replay.text);
    assert!(replay.text.contains("replay"), "{}", replay.text);
    let with_token =
        bus_tests::http::request_with(&owner.addr, "POST", path, Some(&call.raw), "application/json", &headers);
    assert_eq!(with_token.status, 401, "the token is not accepted on the daemons' route: {}", with_token.text);
    let mut tampered = call.raw.clone();
    tampered.push(b' ');
    let forged =
        bus_tests::http::request_with(&owner.addr, "POST", path, Some(&tampered), "application/json", &as_signed);
    assert_eq!(forged.status, 401, "{}", forged.text);
    // Every routed call is in the event log with its origin.
    let events: Value = serde_json::from_str(&get(owner, "/api/eventlog?limit=500").text).unwrap();
    let routed: Vec<&Value> =
        events["items"].as_array().unwrap().iter().filter(|e| e["code"] == "ROUTEDCALL").collect();
    assert_eq!(routed.len(), 1, "{routed:?}");
    assert!(routed[0]["description"].as_str().unwrap().contains(&impostor.url("")), "{}", routed[0]);
}

#[test]
fn a_clustered_daemon_on_a_wildcard_address_needs_its_cluster_address() {
    let env = cluster_env(3000);
    env.configure("auth_token = \"cluster-test-token-0123456789\"");
    let config = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&env.config_path, config.replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\"")).unwrap();
    let log = env.start_fails();
    assert!(log.contains("wildcard address") && log.contains("[cluster] address"), "{log}");
}

/// A lease move re-creates only the connector that moved: when a second
/// daemon joins and takes its share, the connectors that stay keep their
/// running instance (same creation time, still delivering), and only the
/// moved one is created on the daemon that took it.
#[test]
fn a_lease_move_re_creates_only_the_connector_that_moved() {
    let env = cluster_env(2000);
    let names = ["A", "B", "C", "D"];
    for name in names {
        env.scripted(name, json!({"subscriptions": [users("AsyncSimple")]}));
    }
    let a = env.start();
    let alone = placement(&a, 4, 1);
    settled(&[&a], &alone);
    let loaded_at = |d: &Daemon, name: &str| d.connector(name).and_then(|c| c["loaded_at"].as_str().map(str::to_owned));
    let before: BTreeMap<&str, Option<String>> = names.iter().map(|n| (*n, loaded_at(&a, n))).collect();
    assert!(before.values().all(Option::is_some), "every connector runs on the first daemon: {before:?}");
    let b = env.start();
    let owners = placement(&b, 4, 2);
    settled(&[&a, &b], &owners);
    let stayed: Vec<&str> = names.iter().copied().filter(|n| owners[*n] == id_of(&a)).collect();
    assert_eq!(stayed.len(), 2, "the second daemon takes half: {owners:?}");
    for name in &stayed {
        assert_eq!(loaded_at(&a, name), before[name], "{name} stayed on the first daemon and kept its instance");
    }
    // Everything still delivers, wherever it runs.
    a.create("cms.user", json!({"code_name": "after-the-move"}));
    for name in names {
        wait_for("the change to reach every connector", WAIT, || (delivered(&env, name).len() == 1).then_some(()));
    }
}

#[test]
fn an_object_ordered_drain_keeps_each_objects_order_across_a_lease_move() {
    let env = cluster_env(10_000);
    env.scripted("Par", json!({"sleep_ms": 20, "subscriptions": [users("AsyncSimple")]}));
    env.sql()
        .execute(
            "UPDATE Integration_Connector SET ConnectorOrdering = 'object', ConnectorConcurrency = 8, \
             ConnectorBatchSize = 1 WHERE ConnectorName = 'Par'",
            [],
        )
        .unwrap();
    env.set_setting("process_outgoing", false);
    let daemons: Vec<Daemon> = (0..2).map(|_| env.start()).collect();
    let owners = placement(&daemons[0], 1, 2);
    settled(&daemons.iter().collect::<Vec<_>>(), &owners);
    let ids: Vec<String> = daemons.iter().map(id_of).collect();
    let victim = ids.iter().position(|id| *id == owners["Par"]).unwrap();
    let entry = &daemons[1 - victim];
    // 30 users, each created and updated three times: 120 tasks, each
    // user's four in commit order.
    let users: Vec<i64> = (0..30)
        .map(|i| entry.create("cms.user", json!({"code_name": format!("m{i:02}")}))["object"]["id"].as_i64().unwrap())
        .collect();
    for round in 0..3 {
        for u in &users {
            let r = entry.put(&format!("/api/objects/cms.user/{u}"), &json!({"display_name": format!("v{round}")}));
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
    assert_eq!(entry.put("/api/settings", &json!({"process_outgoing": true})).status, 200);
    entry.create("cms.user", json!({"code_name": "trigger"}));
    wait_for("the drain to be under way", WAIT, || (delivered(&env, "Par").len() >= 20).then_some(()));
    let mut daemons = daemons;
    daemons.remove(victim).kill();
    let survivor = &daemons[0];
    let after = placement(survivor, 1, 1);
    assert_ne!(after["Par"], owners["Par"], "Par moved to the living daemon");
    wait_for("the queue to drain", WAIT, || (waiting(survivor) == 0).then_some(()));

    let sql = env.sql();
    let mut stmt = sql.prepare("SELECT Description FROM CMS_EventLog WHERE Source = 'Par' ORDER BY EventID").unwrap();
    let reports: Vec<Value> = stmt
        .query_map([], |r| r.get::<String>(0))
        .unwrap()
        .filter_map(|d| serde_json::from_str::<Value>(&d.unwrap()).ok())
        .filter(|r| r["task_id"].is_i64())
        .collect();
    let mut seen = BTreeSet::new();
    let first: Vec<&Value> = reports.iter().filter(|r| seen.insert(r["task_id"].as_i64().unwrap())).collect();
    assert_eq!(first.len(), 121, "every task delivered");
    assert!(reports.len() - first.len() <= 8, "at most the calls in flight at the kill repeated");
    for i in 0..30 {
        let name = format!("m{i:02}");
        let mut chain: Vec<&&Value> = first.iter().filter(|r| r["name"] == name.as_str()).collect();
        chain.sort_by_key(|r| r["task_id"].as_i64());
        assert_eq!(chain.len(), 4, "{name}");
        for pair in chain.windows(2) {
            let (ended, started) = (pair[0]["returning_at_us"].as_u64(), pair[1]["called_at_us"].as_u64());
            assert!(
                ended <= started,
                "{name}: task {} started before task {} returned",
                pair[1]["task_id"],
                pair[0]["task_id"]
            );
        }
    }
    env.check_integrity();
}

/// A connector's state follows it across a lease move: what it wrote on
/// the daemon that was killed is what it reads on the daemon that took it
/// over.
#[test]
fn a_connectors_state_follows_it_across_a_lease_move() {
    let env = cluster_env(10_000);
    env.scripted("Erp", json!({"subscriptions": [users("AsyncSimple")]}));
    let mut daemons: Vec<Daemon> = (0..2).map(|_| env.start()).collect();
    let owners = placement(&daemons[0], 1, 2);
    settled(&daemons.iter().collect::<Vec<_>>(), &owners);
    let owner = daemons.iter().position(|d| id_of(d) == owners["Erp"]).unwrap();
    daemons[1 - owner].create("cms.user", json!({"code_name": "u1", "fields": {"count_state": "seen"}}));
    let seen = |d: &Daemon| -> Option<String> {
        let items = d.get("/api/connectors/Erp/state").body["items"].as_array()?.clone();
        items.iter().find(|e| e["key"] == "seen").and_then(|e| e["value"].as_str().map(str::to_owned))
    };
    wait_for("the first write", WAIT, || (seen(&daemons[0]).as_deref() == Some("1")).then_some(()));
    daemons.remove(owner).kill();
    let survivor = &daemons[0];
    placement(survivor, 1, 1);
    survivor.create("cms.user", json!({"code_name": "u2", "fields": {"count_state": "seen"}}));
    wait_for("the write after the move", WAIT, || (seen(survivor).as_deref() == Some("2")).then_some(()));
    let reports = env.all_reports("Erp");
    let u2 = reports.iter().find(|r| r["name"] == "u2").unwrap();
    assert_eq!(u2["state_before"], 1, "the new owner read what the old one wrote");
}
