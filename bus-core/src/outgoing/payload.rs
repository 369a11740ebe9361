//! Task payloads: built once when a change is logged (for the richest data
//! mode any subscriber needs), stored as JSON, and spliced into each
//! connector's request without re-serializing when the modes agree.

use crate::change::Applied;
use crate::object_types::ObjectTypes;
use crate::queue::Queued;
use crate::sql::Conn;
use crate::store::{snapshot, translation, StoreError};
use connector_abi::protocol::{encode_request_raw, kind};
use connector_abi::{CmsObject, ObjectData, TaskDataType, TaskProcessType, Translations};
use serde::{Deserialize, Serialize};

/// What a task stores: the object or document, and its translation data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub object: CmsObject,
    #[serde(default)]
    pub translations: Translations,
}

/// The data mode a subscription gets for this object: Snapshot is for
/// objects only, documents get SimpleSnapshot instead.
pub(crate) fn data_type_for(process_type: TaskProcessType, object: &CmsObject) -> TaskDataType {
    match (process_type.data_type(), object) {
        (TaskDataType::Snapshot, CmsObject::Document(_)) => TaskDataType::SimpleSnapshot,
        (dt, _) => dt,
    }
}

/// The asynchronous process type that delivers a data mode.
pub(crate) fn async_process_type(data_type: TaskDataType) -> TaskProcessType {
    match data_type {
        TaskDataType::Simple => TaskProcessType::AsyncSimple,
        TaskDataType::SimpleSnapshot => TaskProcessType::AsyncSimpleSnapshot,
        TaskDataType::Snapshot => TaskProcessType::AsyncSnapshot,
    }
}

fn rank(dt: TaskDataType) -> u8 {
    match dt {
        TaskDataType::Simple => 0,
        TaskDataType::SimpleSnapshot => 1,
        TaskDataType::Snapshot => 2,
    }
}

/// The richer of two data modes.
pub(crate) fn richer(a: TaskDataType, b: TaskDataType) -> TaskDataType {
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn collect_object(conn: &Conn, types: &ObjectTypes, o: &ObjectData, out: &mut Translations) -> Result<(), StoreError> {
    translation::collect(conn, types, &o.fields, &o.foreign_keys, out)?;
    for child in o.children.iter().chain(&o.bindings) {
        collect_object(conn, types, child, out)?;
    }
    Ok(())
}

/// Builds the payload of an applied change for `data_type`.
pub(crate) fn build(
    conn: &Conn,
    types: &ObjectTypes,
    applied: &Applied,
    data_type: TaskDataType,
) -> Result<Payload, StoreError> {
    let mut object = applied.object.clone();
    let mut translations = Translations::default();
    match &mut object {
        CmsObject::Object(o) => {
            if data_type.has_children() {
                if !applied.snapshot_loaded {
                    snapshot::load(conn, types, o)?;
                }
            } else {
                o.children.clear();
                o.bindings.clear();
            }
            if data_type.has_translations() {
                collect_object(conn, types, o, &mut translations)?;
            }
        }
        CmsObject::Document(d) => {
            if data_type.has_translations() {
                translation::collect(conn, types, &d.fields, &d.foreign_keys, &mut translations)?;
            }
        }
    }
    Ok(Payload { object, translations })
}

/// Strips a payload down to a poorer data mode.
pub(crate) fn downgrade(payload: &mut Payload, to: TaskDataType) {
    if !to.has_translations() {
        payload.translations = Translations::default();
    }
    if !to.has_children() {
        if let CmsObject::Object(o) = &mut payload.object {
            fn strip(o: &mut ObjectData) {
                o.children.clear();
                o.bindings.clear();
            }
            strip(o);
        }
    }
}

/// The `process_internal_task_async` request for one queued task (see
/// [`async_body`]).
pub(crate) fn async_request(q: &Queued, token: Option<i64>) -> Result<Vec<u8>, String> {
    Ok(encode_request_raw(kind::PROCESS_ASYNC, async_body(q, token)?.as_bytes()))
}

/// The `process_internal_tasks_async` request for tasks of one queue:
/// `{"tasks": [<body>, …]}`, each body as [`async_body`] splices it.
pub(crate) fn batch_request(tasks: &[&Queued], token: Option<i64>) -> Result<Vec<u8>, String> {
    let mut body = String::from("{\"tasks\":[");
    for (i, q) in tasks.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&async_body(q, token)?);
    }
    body.push_str("]}");
    Ok(encode_request_raw(kind::PROCESS_ASYNC_BATCH, body.as_bytes()))
}

/// The body of a delivery: the task fields, then the stored payload's
/// fields as they are (re-serialized only when the connector subscribed
/// with a poorer data mode than stored); `token` is the lease epoch the
/// delivery is made under (`fencing_token`).
fn async_body(q: &Queued, token: Option<i64>) -> Result<String, String> {
    let data = if q.data_type == q.task_data_type {
        std::borrow::Cow::Borrowed(q.data.as_str())
    } else {
        let mut payload: Payload =
            serde_json::from_str(&q.data).map_err(|e| format!("the stored task data is unreadable: {e}"))?;
        downgrade(&mut payload, q.data_type);
        std::borrow::Cow::Owned(serde_json::to_string(&payload).expect("a payload serializes"))
    };
    let rest = data.strip_prefix('{').filter(|r| r.len() > 1).ok_or("the stored task data is not a JSON object")?;
    let mut body = String::with_capacity(data.len() + q.title.len() + 128);
    body.push_str("{\"task_id\":");
    body.push_str(&q.task_id.to_string());
    body.push_str(",\"task_type\":");
    body.push_str(&serde_json::to_string(&q.task_type).expect("an enum serializes"));
    body.push_str(",\"data_type\":");
    body.push_str(&serde_json::to_string(&q.data_type).expect("an enum serializes"));
    body.push_str(",\"site_name\":");
    body.push_str(&serde_json::to_string(&q.site_name).expect("a string serializes"));
    body.push_str(",\"title\":");
    body.push_str(&serde_json::to_string(&q.title).expect("a string serializes"));
    if let Some(token) = token {
        body.push_str(",\"fencing_token\":");
        body.push_str(&token.to_string());
    }
    body.push(',');
    body.push_str(rest);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_abi::protocol::{decode_body, OutgoingTask, RequestEnvelope};

    fn queued(data: &Payload, stored: &str, wanted: &str) -> Queued {
        Queued {
            sync_id: 1,
            task_id: 9,
            task_type: connector_abi::TaskType::CreateObject,
            task_data_type: stored.parse().unwrap(),
            data_type: wanted.parse().unwrap(),
            process_type: None,
            site_name: Some("Corp \"Site\"".into()),
            title: "Create User 'a'".into(),
            data: serde_json::to_string(data).unwrap(),
            matching: crate::queue::Matching::Decided,
            unreadable: None,
            failed: false,
        }
    }

    #[test]
    fn the_spliced_request_reads_as_an_outgoing_task() {
        let payload = Payload {
            object: CmsObject::Object(ObjectData {
                object_type: "cms.user".into(),
                code_name: "a".into(),
                children: vec![ObjectData::default()],
                ..Default::default()
            }),
            translations: Translations {
                objects: vec![connector_abi::ObjectTranslation {
                    object_type: "cms.role".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        };
        for (wanted, translations, children) in [("Snapshot", 1, 1), ("SimpleSnapshot", 1, 0), ("Simple", 0, 0)] {
            let bytes = async_request(&queued(&payload, "Snapshot", wanted), None).unwrap();
            let env: RequestEnvelope<'_> = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(env.kind, kind::PROCESS_ASYNC);
            let task: OutgoingTask = decode_body(env.body).unwrap();
            assert_eq!(task.task_id, 9);
            assert_eq!(task.data_type.to_string(), wanted);
            assert_eq!(task.site_name.as_deref(), Some("Corp \"Site\""));
            assert_eq!(task.translations.objects.len(), translations, "{wanted}");
            let CmsObject::Object(o) = task.object else { panic!() };
            assert_eq!(o.children.len(), children, "{wanted}");
        }
    }
}
