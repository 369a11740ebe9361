//! The incoming example of `connector-abi/README.md` (section 4), word for
//! word below this header (a test keeps the two equal): it builds, loads and
//! applies the README's requests.

use connector_abi::prelude::*;

/// An ERP that pushes its customers and their group memberships.
pub struct Erp {
    host: Host,
}

impl Connector for Erp {
    fn create(_config: &str, host: Host) -> Result<Self, ConnectorError> {
        Ok(Erp { host })
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
            // A customer: found again by its login on later updates. Its
            // number → login goes into the state the bus keeps for us (in
            // the bus database: it survives restarts and moves between
            // daemons), for the memberships that name it.
            (Some(customer), None) => {
                let login = record["login"].as_str().ok_or("a customer without a login")?;
                self.host.state_put(&format!("cms.user:{customer}"), login).map_err(|e| e.to_string())?;
                ObjectData {
                    object_type: "cms.user".into(),
                    code_name: login.into(),
                    display_name: record["name"].as_str().map(Into::into),
                    ..Default::default()
                }
            }
            _ => return Err("neither a customer nor a membership".into()),
        };
        Ok(CmsObject::Object(object))
    }

    /// What an ERP number points to: the code name (and site) the bus finds
    /// the object by.
    fn get_internal_object_params(&self, id: i64, object_type: &str) -> Option<ObjectParams> {
        let code_name = match object_type {
            "cms.user" => self.host.state_get(&format!("cms.user:{id}")).ok()??,
            "cms.role" => erp_group(id)?,
            _ => return None,
        };
        let site_name = (object_type == "cms.role").then(|| "CorpSite".to_owned());
        Some(ObjectParams { code_name, site_name, ..Default::default() })
    }
}

export_connectors!(Erp);

// Your ERP's groups (they could be kept in the state too).
fn erp_group(id: i64) -> Option<String> {
    (id == 3).then(|| "editors".into())
}
