//! The rows a task is queued as: its `Integration_Task` columns
//! (`NewTask`, `task_columns`), its relations to the connectors that get it
//! (`NewRelation`, `Matching`), the statements that insert them, and the
//! `Direction` of a queue. Below both the queue (`queue.rs`) and the
//! storage drivers (`driver/`), which insert tasks their own way with these
//! columns.

use crate::sql::{Conn, ValueRef};
use connector_abi::{CmsObject, IntegrationProcessType, TaskDataType, TaskType};

/// Which queue: changes going out to connectors, or coming in from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Outgoing,
    Incoming,
}

impl Direction {
    pub fn inbound(self) -> bool {
        self == Direction::Incoming
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Outgoing => "outgoing",
            Direction::Incoming => "incoming",
        }
    }
}

/// Bound as the `...IsInbound` columns store it: 1 for incoming, 0 for outgoing.
impl crate::sql::ToValue for Direction {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::from(self.inbound()))
    }
}

impl std::str::FromStr for Direction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "outgoing" => Ok(Direction::Outgoing),
            "incoming" => Ok(Direction::Incoming),
            other => Err(format!("`{other}` is not a direction: use outgoing or incoming")),
        }
    }
}

/// A task to insert.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewTask<'a> {
    pub direction: Direction,
    pub task_type: TaskType,
    pub data_type: TaskDataType,
    pub process_type: Option<IntegrationProcessType>,
    pub site_name: Option<&'a str>,
    pub title: &'a str,
    pub object: &'a CmsObject,
    /// The serialized payload (`{"object": ..., "translations": ...}`).
    pub data: &'a str,
}

pub(crate) fn insert_task(conn: &Conn, t: &NewTask<'_>) -> crate::sql::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO Integration_Task (TaskIsInbound, TaskType, TaskDataType, TaskProcessType, TaskSiteName, TaskTitle, \
         TaskObjectType, TaskObjectID, TaskNodeID, TaskDocumentID, TaskNodeAliasPath, TaskData, TaskTime) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING TaskID",
    )?
    .query_row(task_columns(t).values(), |r| r.get(0))
}

/// A new task's columns as `Integration_Task` stores them.
pub(crate) struct TaskColumns<'a> {
    pub(crate) direction: Direction,
    pub(crate) task_type: &'static str,
    pub(crate) data_type: &'static str,
    pub(crate) process_type: Option<&'static str>,
    pub(crate) site_name: Option<&'a str>,
    pub(crate) title: &'a str,
    pub(crate) object_type: Option<&'a str>,
    pub(crate) object_id: Option<i64>,
    pub(crate) node_id: Option<i64>,
    pub(crate) document_id: Option<i64>,
    pub(crate) alias_path: Option<&'a str>,
    pub(crate) data: &'a str,
    pub(crate) time: String,
}

impl TaskColumns<'_> {
    /// The values in the order of the task `INSERT`'s thirteen columns
    /// (`TaskIsInbound` … `TaskTime`).
    pub(crate) fn values(&self) -> Vec<&dyn crate::sql::ToValue> {
        vec![
            &self.direction,
            &self.task_type,
            &self.data_type,
            &self.process_type,
            &self.site_name,
            &self.title,
            &self.object_type,
            &self.object_id,
            &self.node_id,
            &self.document_id,
            &self.alias_path,
            &self.data,
            &self.time,
        ]
    }
}

/// The columns `t` is stored with.
pub(crate) fn task_columns<'a>(t: &NewTask<'a>) -> TaskColumns<'a> {
    let (object_type, object_id, node_id, document_id, alias_path) = match t.object {
        CmsObject::Object(o) => (Some(o.object_type.as_str()), Some(o.id), None, None, None),
        CmsObject::Document(d) => (None, None, Some(d.node_id), Some(d.document_id), Some(d.node_alias_path.as_str())),
    };
    TaskColumns {
        direction: t.direction,
        task_type: t.task_type.name(),
        data_type: t.data_type.name(),
        process_type: t.process_type.map(|p| p.name()),
        site_name: t.site_name,
        title: t.title,
        object_type,
        object_id,
        node_id,
        document_id,
        alias_path,
        data: t.data,
        time: crate::db::now(),
    }
}

/// Queues a task for one connector.
pub(crate) fn insert_relation(
    conn: &Conn,
    task_id: i64,
    connector_id: i64,
    direction: Direction,
    data_type: TaskDataType,
) -> crate::sql::Result<()> {
    insert_relations(conn, task_id, direction, &[NewRelation { connector_id, data_type, matching: Matching::Decided }])
}

/// Whether a queued relation still has to ask its connector's custom
/// subscriptions (`SynchronizationMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matching {
    /// The relation is decided: deliver it with its data type.
    Decided,
    /// Ask `is_match` before delivery; no match removes the relation.
    Ask,
    /// Ask `is_match` before delivery; no match delivers it with its data type.
    AskOrKeep,
}

impl Matching {
    pub(crate) fn column(self) -> Option<&'static str> {
        match self {
            Matching::Decided => None,
            Matching::Ask => Some("Ask"),
            Matching::AskOrKeep => Some("AskOrKeep"),
        }
    }

    pub(crate) fn from_column(value: Option<&str>) -> Self {
        match value {
            Some("Ask") => Matching::Ask,
            Some("AskOrKeep") => Matching::AskOrKeep,
            _ => Matching::Decided,
        }
    }
}

/// One connector's relation to a new task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRelation {
    pub connector_id: i64,
    pub data_type: TaskDataType,
    pub matching: Matching,
}

/// How many relations one INSERT statement carries at most.
const RELATIONS_PER_INSERT: usize = 8;

/// Queues a task for several connectors, up to [`RELATIONS_PER_INSERT`]
/// rows per statement.
pub(crate) fn insert_relations(
    conn: &Conn,
    task_id: i64,
    direction: Direction,
    relations: &[NewRelation],
) -> crate::sql::Result<()> {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        (1..=RELATIONS_PER_INSERT)
            .map(|n| {
                let rows: Vec<String> =
                    (0..n).map(|i| format!("($1, $2, ${}, ${}, ${})", 3 + 3 * i, 4 + 3 * i, 5 + 3 * i)).collect();
                format!(
                    "INSERT INTO Integration_Synchronization (SynchronizationTaskID, SynchronizationIsInbound, \
                     SynchronizationConnectorID, SynchronizationDataType, SynchronizationMatch) VALUES {}",
                    rows.join(", ")
                )
            })
            .collect()
    });
    for chunk in relations.chunks(RELATIONS_PER_INSERT) {
        let columns: Vec<(&str, Option<&str>)> =
            chunk.iter().map(|r| (r.data_type.name(), r.matching.column())).collect();
        let mut values: Vec<&dyn crate::sql::ToValue> = Vec::with_capacity(2 + 3 * chunk.len());
        values.push(&task_id);
        values.push(&direction);
        for (r, (data_type, matching)) in chunk.iter().zip(&columns) {
            values.push(&r.connector_id);
            values.push(data_type);
            values.push(matching);
        }
        conn.prepare_cached(&sql[chunk.len() - 1])?.execute(values)?;
    }
    Ok(())
}
