-- Schema version 5: outgoing relations delivered but not yet removed. A
-- worker records each delivery here before its next call (one appended row
-- per commit, instead of a relation, its two index entries and maybe the
-- task) and removes the delivered relations in bulk; whatever a crash left
-- here is removed before the workers start.
CREATE TABLE Integration_Delivered (DeliveredSynchronizationID INTEGER PRIMARY KEY);
