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
