//! The incoming example of `connector-abi/README.md` (section 4), word for
//! word below this header (a test keeps the two equal): it builds, loads and
//! applies the README's requests.

use connector_abi::prelude::*;

/// An ERP that pushes its customers and their group memberships.
pub struct Erp;

impl Connector for Erp {
    fn create(_config: &str, _host: Host) -> Result<Self, ConnectorError> {
        Ok(Erp)
    }

    fn init(&self, init: &mut Init) {
        init.set_connector_name("Erp");
    }

    /// An ERP record, as it was posted → the object the content store keeps.
    fn prepare_internal_object(&self, request: &PrepareInternalObjectRequest) -> Result<CmsObject, ConnectorError> {
        let record = &request.external;
        let object = match (record["customer_no"].as_i64(), record["group_no"].as_i64()) {
            // A membership is a binding: no code name, its two keys are the
            // ERP's numbers (logged as SimpleSnapshot, translated below).
            (Some(customer), Some(group)) => ObjectData {
                object_type: "cms.userrole".into(),
                fields: [("UserID".into(), customer.into()), ("RoleID".into(), group.into())].into_iter().collect(),
                ..Default::default()
            },
            // A customer: found again by its login on later updates.
            (Some(_), None) => ObjectData {
                object_type: "cms.user".into(),
                code_name: record["login"].as_str().ok_or("a customer without a login")?.into(),
                display_name: record["name"].as_str().map(Into::into),
                ..Default::default()
            },
            _ => return Err("neither a customer nor a membership".into()),
        };
        Ok(CmsObject::Object(object))
    }

    /// What an ERP number points to: the code name (and site) the bus finds
    /// the object by.
    fn get_internal_object_params(&self, id: i64, object_type: &str) -> Option<ObjectParams> {
        let code_name = erp_code_name(object_type, id)?;
        let site_name = (object_type == "cms.role").then(|| "CorpSite".to_owned());
        Some(ObjectParams { code_name, site_name, ..Default::default() })
    }
}

export_connectors!(Erp);

// Your ERP's lookup (or the bus's state store) goes here.
fn erp_code_name(object_type: &str, id: i64) -> Option<String> {
    match (object_type, id) {
        ("cms.user", 7) => Some("maria".into()),
        ("cms.role", 3) => Some("editors".into()),
        _ => None,
    }
}
