"""Uses the Python client openapi-python-client generated from the daemon's
OpenAPI document, as an integrator would: every call goes through the
generated functions and models, and every answer is parsed by them (an enum
value, a tagged union or a header the document got wrong fails here).

Usage: python use_client.py <folder holding the generated `client` package> <base URL>
"""

import sys

sys.path.insert(0, sys.argv[1])
base_url = sys.argv[2]

from client import Client  # noqa: E402
from client.api.connectors import connectors_get, connectors_list, connectors_update  # noqa: E402
from client.api.content import (  # noqa: E402
    content_create_document,
    content_create_object,
    content_object_types,
    content_update_object,
)
from client.api.eventlog import eventlog_list  # noqa: E402
from client.api.settings import settings_get, settings_put  # noqa: E402
from client.api.tasks import tasks_delete_outgoing, tasks_get, tasks_list_outgoing  # noqa: E402
from client.models import (  # noqa: E402
    BulkAll,
    ChangeResult,
    ConnectorPatch,
    ConnectorView,
    DeleteReport,
    DocumentInput,
    IsolationSetting,
    ObjectInput,
    ObjectPatch,
    Settings,
    SettingsPatch,
    TaskPage,
    TaskType,
    TypesView,
)

client = Client(base_url=base_url, raise_on_unexpected_status=True)
SAMPLE = "SampleIntegrationConnector"


def check(what, value, kind):
    if not isinstance(value, kind):
        raise SystemExit(f"{what}: expected {kind.__name__}, got {type(value).__name__}: {value!r}")
    print(f"ok: {what}")
    return value


settings = check("settings", settings_get.sync(client=client), Settings)
check("settings changed", settings_put.sync(client=client, body=SettingsPatch(process_outgoing=False)), Settings)

types = check("object types", content_object_types.sync(client=client), TypesView)
assert types.objects, "object types are listed"

# An isolation other than the first value of its enum.
patched = connectors_update.sync(
    name=SAMPLE, client=client, body=ConnectorPatch(isolation=IsolationSetting.IN_PROCESS)
)
check("connector changed", patched, ConnectorView)
listed = connectors_list.sync(client=client)
assert [c.isolation for c in listed] == [IsolationSetting.IN_PROCESS], listed
check("connector", connectors_get.sync(name=SAMPLE, client=client), ConnectorView)

site = check("site created", content_create_object.sync("cms.site", client=client, body=ObjectInput(code_name="CorpSite")), ChangeResult)
user = check("user created", content_create_object.sync("cms.user", client=client, body=ObjectInput(code_name="ada")), ChangeResult)
assert user.task_type == TaskType.CREATEOBJECT, user.task_type
changed = content_update_object.sync("cms.user", user.object_.id, client=client, body=ObjectPatch(display_name="Ada"))
check("user changed", changed, ChangeResult)
document = content_create_document.sync(
    client=client,
    body=DocumentInput(site_name="CorpSite", alias_path="/Home", class_name="cms.menuitem", culture="en-US", name="Home"),
)
check("document created", document, ChangeResult)
assert document.task_type == TaskType.CREATEDOCUMENT, document.task_type

page = check("outgoing queue", tasks_list_outgoing.sync(client=client), TaskPage)
titles = [t.title for t in page.items]
assert titles == ["Create User 'ada'", "Update User 'Ada'", "Create document Home"], titles
detail = tasks_get.sync(page.items[0].task_id, client=client)
assert detail is not None and detail.relations, detail

deleted = tasks_delete_outgoing.sync(client=client, body=BulkAll(all_=True, search="Home"))
check("listed tasks deleted", deleted, DeleteReport)
assert deleted.deleted == 1, deleted
assert [t.title for t in tasks_list_outgoing.sync(client=client).items] == titles[:2]

events = eventlog_list.sync(client=client)
assert events is not None and events.items, events
print("ok: event log")
