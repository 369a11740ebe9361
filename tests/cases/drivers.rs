//! The storage drivers' conformance suite (`bus_core::driver_conformance`),
//! run against every engine the bus stores in: the same checks of each
//! driver operation on an embedded SQLite file and on a PostgreSQL
//! database, in every pass of the suite (not only the PostgreSQL pass).

use bus_core::db::{Database, Location};

#[test]
fn the_sqlite_driver_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Database::open(&dir.path().join("bus.db")).expect("a new SQLite bus database");
    bus_core::driver_conformance::run(&db);
}

#[test]
fn the_postgresql_driver_passes_the_conformance_suite() {
    let database = bus_tests::postgres::database();
    let (db, _) = Database::open_at(&Location::parse(&database.url)).expect("a new PostgreSQL bus database");
    bus_core::driver_conformance::run(&db);
}

/// `synchronous = "normal"` on PostgreSQL: a delivery's record (and only
/// it) commits without waiting for the server's disk — `bus_deliver` with
/// `durable` false turns `synchronous_commit` off for its own transaction,
/// and with `durable` true (`synchronous = "full"`) leaves it as it was.
#[test]
fn a_deliverys_record_skips_the_disk_wait_only_when_asked_and_only_for_its_transaction() {
    let database = bus_tests::postgres::database();
    let (db, _) = Database::open_at(&Location::parse(&database.url)).expect("a new PostgreSQL bus database");
    let mut conn = db.connect().unwrap();
    // The throwaway test server runs with `synchronous_commit = off`.
    conn.execute_batch("SET synchronous_commit = on").unwrap();
    let setting = |conn: &bus_core::sql::Conn| -> String {
        conn.query_row("SELECT current_setting('synchronous_commit')", [], |r| r.get(0)).unwrap()
    };
    for (durable, within) in [(false, "off"), (true, "on")] {
        let tx = conn.transaction().unwrap();
        let recorded: bool = tx
            .query_row(
                "SELECT bus_deliver(1, 0, 'nobody', 1, CAST($1 AS TEXT)::BIGINT[], $2)",
                bus_core::sql::params!["{}", durable],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!recorded, "no lease is held: nothing recorded");
        assert_eq!(setting(&tx), within, "inside the delivery's transaction (durable: {durable})");
        tx.commit().unwrap();
        assert_eq!(setting(&conn), "on", "after it (durable: {durable})");
    }
}
