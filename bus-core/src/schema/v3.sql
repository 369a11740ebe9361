-- Schema version 3: scheduled tasks.

CREATE TABLE CMS_ScheduledTask (
    TaskName            TEXT    PRIMARY KEY,
    TaskDisplayName     TEXT    NOT NULL,
    TaskIntervalSeconds INTEGER NOT NULL CHECK (TaskIntervalSeconds > 0),
    TaskEnabled         INTEGER NOT NULL DEFAULT 1 CHECK (TaskEnabled IN (0, 1)),
    TaskLastRun         TEXT,
    TaskNextRun         TEXT    NOT NULL,
    TaskLastResult      TEXT,
    TaskExecutions      INTEGER NOT NULL DEFAULT 0
);

-- Processing of incoming tasks, once a day by default (as the specification ships it).
INSERT INTO CMS_ScheduledTask (TaskName, TaskDisplayName, TaskIntervalSeconds, TaskNextRun)
VALUES ('ProcessExternalIntegrationTasks', 'Process external integration tasks', 86400,
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 day'));
