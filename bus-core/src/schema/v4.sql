-- Schema version 4: the parent index leaves out objects without a parent
-- (users, roles, sites, ...), so creating one writes one index page less.
DROP INDEX CMS_Object_Parent;
CREATE INDEX CMS_Object_Parent ON CMS_Object (ObjectParentID) WHERE ObjectParentID IS NOT NULL;
