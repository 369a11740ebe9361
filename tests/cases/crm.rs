//! The two-way CRM connector: a user made in the content store appears in
//! the CRM file, a contact changed in the CRM appears in the content store,
//! and nothing loops.

use bus_tests::{wait_for, Daemon, TestEnv};
use rusqlite::{Connection, OptionalExtension};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn crm(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.pragma_update(None, "foreign_keys", "ON").unwrap();
    c
}

fn one<T: rusqlite::types::FromSql>(c: &Connection, sql: &str) -> Option<T> {
    c.query_row(sql, [], |r| r.get(0)).optional().unwrap_or(None)
}

fn user(d: &Daemon, code: &str) -> Option<serde_json::Value> {
    d.get("/api/objects/cms.user?limit=1000").body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["code_name"] == code)
        .cloned()
}

#[test]
fn users_and_roles_round_trip_without_a_loop() {
    let env = TestEnv::new();
    env.install("crm_connector", "crm_connector");
    let crm_path = env.dir.path().join("crm.db");
    let config = json!({"database": crm_path, "site_name": "CorpSite", "poll_ms": 100});
    env.register("Crm", "crm_connector", "CrmConnector", true, &config.to_string());
    let d = env.start();
    assert_eq!(d.connector("Crm").unwrap()["loaded"], true, "{}", d.connector("Crm").unwrap());

    // Content store → CRM, with the binding's keys translated to CRM IDs.
    d.create("cms.site", json!({"code_name": "CorpSite"}));
    let role = d
        .create("cms.role", json!({"code_name": "editors", "display_name": "Editors", "site_name": "CorpSite"}))
        ["object"]["id"]
        .as_i64()
        .unwrap();
    let antonio = d.create(
        "cms.user",
        json!({"code_name": "antonio", "display_name": "Antonio", "fields": {"email": "antonio@example.com"}}),
    )["object"]["id"]
        .as_i64()
        .unwrap();
    d.create("cms.userrole", json!({"fields": {"UserID": antonio, "RoleID": role}}));
    let c = crm(&crm_path);
    wait_for("the membership to reach the CRM", WAIT, || {
        one::<i64>(
            &c,
            "SELECT COUNT(*) FROM crm_membership m JOIN crm_contact k ON k.id = m.contact_id \
                       JOIN crm_group g ON g.id = m.group_id WHERE k.login = 'antonio' AND g.code = 'editors'",
        )
        .filter(|n| *n == 1)
    });
    assert_eq!(
        one::<String>(&c, "SELECT email FROM crm_contact WHERE login = 'antonio'").as_deref(),
        Some("antonio@example.com")
    );

    // CRM → content store.
    c.execute("UPDATE crm_contact SET full_name = 'Antonio Banderas' WHERE login = 'antonio'", []).unwrap();
    wait_for("the CRM edit to reach the content store", WAIT, || {
        user(&d, "antonio").filter(|u| u["display_name"] == "Antonio Banderas")
    });
    c.execute("INSERT INTO crm_contact (login, full_name) VALUES ('maria', 'Maria')", []).unwrap();
    let maria_crm: i64 = one(&c, "SELECT id FROM crm_contact WHERE login = 'maria'").unwrap();
    let editors_crm: i64 = one(&c, "SELECT id FROM crm_group WHERE code = 'editors'").unwrap();
    c.execute("INSERT INTO crm_membership (contact_id, group_id) VALUES (?1, ?2)", [maria_crm, editors_crm]).unwrap();
    let maria = wait_for("maria to arrive", WAIT, || user(&d, "maria"));
    let maria_id = maria["id"].as_i64().unwrap();
    wait_for("maria's membership to arrive with internal IDs", WAIT, || {
        d.get("/api/objects/cms.userrole").body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["fields"]["UserID"] == maria_id && b["fields"]["RoleID"] == role)
            .then_some(())
    });

    // No loop: everything settles, nothing is left to send either way, and
    // the CRM did not receive its own changes back.
    std::thread::sleep(Duration::from_millis(800));
    let changes_before: i64 = one(&c, "SELECT COUNT(*) FROM crm_change").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let changes_after: i64 = one(&c, "SELECT COUNT(*) FROM crm_change").unwrap();
    assert_eq!(changes_before, changes_after, "the CRM keeps changing: a loop");
    assert_eq!(one::<i64>(&c, "SELECT COUNT(*) FROM crm_change WHERE processed <> 1"), Some(0));
    assert!(d.queue("outgoing", "&connector=Crm").is_empty());
    assert!(d.queue("incoming", "").is_empty());
    assert_eq!(one::<i64>(&c, "SELECT COUNT(*) FROM crm_contact"), Some(2));
}
