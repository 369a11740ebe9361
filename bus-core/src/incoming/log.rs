//! Logging an incoming task: the connector turns the external data into an
//! internal object or document (`prepare_internal_object`) and, for
//! SimpleSnapshot and Snapshot, identifies what each foreign key points to
//! (`get_internal_object_params` / `get_internal_document_params`); the task
//! is stored with that translation data.

use super::IncomingError;
use crate::change;
use crate::connector::LiveConnector;
use crate::db::Database;
use crate::object_types::ObjectTypes;
use crate::outgoing::payload::Payload;
use crate::queue::{self, Direction, NewTask};
use crate::settings::Settings;
use connector_abi::protocol::{
    kind, DocumentParamsResponse, GetInternalDocumentParamsRequest, GetInternalObjectParamsRequest,
    LogIncomingTaskRequest, ObjectParamsResponse, PrepareInternalObjectRequest, PrepareInternalObjectResponse,
};
use connector_abi::{
    CmsObject, DocumentTranslation, ObjectData, ObjectTranslation, TaskDataType, Translations, DOCUMENT_NODE,
    DOCUMENT_VERSION,
};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Logs one incoming task for `connector`; returns its ID. Every call into
/// the connector runs on its lane with the call timeout, and no lock is held
/// meanwhile.
pub(super) fn log(
    settings: &Settings,
    db: &Database,
    types: &ObjectTypes,
    connector: &Arc<LiveConnector>,
    request: LogIncomingTaskRequest,
) -> Result<i64, IncomingError> {
    if !settings.logs_incoming() {
        return Err(IncomingError::Disabled(
            "logging of incoming tasks is disabled in the settings (`enabled` and `log_incoming`); nothing was stored"
                .into(),
        ));
    }
    if request.task_type == connector_abi::TaskType::All {
        return Err(IncomingError::Invalid(
            "task type All only makes sense in a subscription; name what must happen".into(),
        ));
    }
    let prepared: PrepareInternalObjectResponse = LiveConnector::request_timeout(
        connector,
        kind::PREPARE_INTERNAL_OBJECT,
        &PrepareInternalObjectRequest {
            external: request.external.clone(),
            task_type: request.task_type,
            data_type: request.data_type,
            site_name: request.site_name.clone(),
        },
    )
    .map_err(|e| IncomingError::Connector(format!("prepare_internal_object failed: {e}")))?;
    let mut object = prepared.object;
    describe(types, &mut object)?;
    match (&object, request.task_type.is_document()) {
        (CmsObject::Object(_), true) | (CmsObject::Document(_), false) => {
            return Err(IncomingError::Invalid(format!(
                "task type {} does not fit the prepared {}",
                request.task_type,
                if matches!(object, CmsObject::Object(_)) { "object" } else { "document" }
            )))
        }
        _ => {}
    }
    if let (CmsObject::Document(_), TaskDataType::Snapshot) = (&object, request.data_type) {
        return Err(IncomingError::Invalid("the Snapshot data mode is not supported for documents".into()));
    }
    let mut translations = Translations::default();
    if request.data_type.has_translations() {
        collect(connector, &object, request.data_type, &mut translations)?;
    }
    if !request.data_type.has_children() {
        if let CmsObject::Object(o) = &mut object {
            o.children.clear();
            o.bindings.clear();
        }
    }
    let title = change::title(types, request.task_type, &object);
    let site = request.site_name.clone().or_else(|| object.site_name().map(str::to_owned));
    let payload = Payload { object, translations };
    let data = serde_json::to_string(&payload).expect("a payload serializes");
    // The connector was asked everything above; only now take the write turn.
    let mut turn = db.writer()?;
    // IMMEDIATE: the existence check reads first, and a read transaction
    // that turns into a write fails at once if another process committed
    // in between (SQLite's busy snapshot), instead of waiting its turn.
    let tx = turn.transaction_with(crate::sql::Begin::Immediate)?;
    // The connector may have been deleted while it was asked (plain SQL);
    // if not, it stays until the commit.
    if !crate::driver::of(&tx).hold_connector(&tx, connector.id)? {
        return Err(IncomingError::UnknownConnector(connector.name.clone()));
    }
    let task_id = queue::insert_task(
        &tx,
        &NewTask {
            direction: Direction::Incoming,
            task_type: request.task_type,
            data_type: request.data_type,
            process_type: Some(request.process_type),
            site_name: site.as_deref(),
            title: &title,
            object: &payload.object,
            data: &data,
        },
    )?;
    queue::insert_relation(&tx, task_id, connector.id, Direction::Incoming, request.data_type)?;
    tx.commit()?;
    Ok(task_id)
}

/// Checks the prepared object's type and fills in its foreign keys (and its
/// children's and bindings').
fn describe(types: &ObjectTypes, object: &mut CmsObject) -> Result<(), IncomingError> {
    fn describe_object(types: &ObjectTypes, o: &mut ObjectData) -> Result<(), IncomingError> {
        if types.object(&o.object_type).is_none() {
            return Err(IncomingError::Invalid(format!(
                "the connector prepared an object of unknown type `{}`; known types: {}",
                o.object_type,
                types.object_names().join(", ")
            )));
        }
        crate::store::objects::describe(types, o);
        for child in o.children.iter_mut().chain(o.bindings.iter_mut()) {
            describe_object(types, child)?;
        }
        Ok(())
    }
    match object {
        CmsObject::Object(o) => describe_object(types, o),
        CmsObject::Document(d) => {
            if types.document(&d.class_name).is_none() {
                return Err(IncomingError::Invalid(format!(
                    "the connector prepared a document of unknown class `{}`; known classes: {}",
                    d.class_name,
                    types.document_names().join(", ")
                )));
            }
            crate::store::documents::describe(types, d);
            Ok(())
        }
    }
}

/// Asks the connector what each foreign key (an external ID) points to.
fn collect(
    connector: &Arc<LiveConnector>,
    object: &CmsObject,
    data_type: TaskDataType,
    out: &mut Translations,
) -> Result<(), IncomingError> {
    match object {
        CmsObject::Object(o) => collect_object(connector, o, data_type, out),
        CmsObject::Document(d) => collect_fields(connector, &d.fields, &d.foreign_keys, out),
    }
}

fn collect_object(
    connector: &Arc<LiveConnector>,
    o: &ObjectData,
    data_type: TaskDataType,
    out: &mut Translations,
) -> Result<(), IncomingError> {
    collect_fields(connector, &o.fields, &o.foreign_keys, out)?;
    if data_type.has_children() {
        for child in o.children.iter().chain(&o.bindings) {
            collect_object(connector, child, data_type, out)?;
        }
    }
    Ok(())
}

fn collect_fields(
    connector: &Arc<LiveConnector>,
    fields: &Map<String, Value>,
    foreign_keys: &Map<String, Value>,
    out: &mut Translations,
) -> Result<(), IncomingError> {
    for (field, target) in foreign_keys {
        let (Some(target), Some(id)) = (target.as_str(), fields.get(field).and_then(Value::as_i64)) else { continue };
        if target == DOCUMENT_VERSION || target == DOCUMENT_NODE {
            if out.document(id).is_some() {
                continue;
            }
            let answer: DocumentParamsResponse = LiveConnector::request_timeout(
                connector,
                kind::GET_INTERNAL_DOCUMENT_PARAMS,
                &GetInternalDocumentParamsRequest { id, class_name: String::new() },
            )
            .map_err(|e| IncomingError::Connector(format!("get_internal_document_params for `{field}` failed: {e}")))?;
            if let Some(p) = answer.params {
                out.documents.push(DocumentTranslation {
                    id,
                    class_name: String::new(),
                    node_guid: p.node_guid,
                    culture: p.culture,
                    site_name: p.site_name,
                });
            }
        } else {
            if out.object(target, id).is_some() {
                continue;
            }
            let answer: ObjectParamsResponse = LiveConnector::request_timeout(
                connector,
                kind::GET_INTERNAL_OBJECT_PARAMS,
                &GetInternalObjectParamsRequest { id, object_type: target.to_owned() },
            )
            .map_err(|e| IncomingError::Connector(format!("get_internal_object_params for `{field}` failed: {e}")))?;
            if let Some(p) = answer.params {
                out.objects.push(ObjectTranslation {
                    object_type: target.to_owned(),
                    id,
                    code_name: p.code_name,
                    site_name: p.site_name,
                    parent_type: None,
                    parent_id: p.parent_id,
                    group_id: p.group_id,
                });
            }
        }
    }
    Ok(())
}
