-- PostgreSQL schema version 7: a change's transaction that starts from the
-- settings its daemon read before, without a round trip to read them again.

-- The settings as one short text: it differs whenever any key or value
-- does, however the table was edited (the API, the UI, or psql).
-- (PL/pgSQL, as the check below: it keeps the query's plan, where an SQL
-- function with an aggregate is planned anew at every call.)
CREATE FUNCTION bus_settings_version() RETURNS TEXT LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT md5(coalesce(string_agg(KeyName || '=' || KeyValue, E'\n' ORDER BY KeyName COLLATE "C"), ''))
            FROM CMS_SettingsKey);
END $$;

-- The first statement of such a transaction: it fails (SQLSTATE BU001) when
-- the settings are no longer those the daemon read, and the daemon then
-- runs the change again from the settings as committed.
CREATE FUNCTION bus_expect_settings(expected TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT md5(coalesce(string_agg(KeyName || '=' || KeyValue, E'\n' ORDER BY KeyName COLLATE "C"), ''))
        FROM CMS_SettingsKey) IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'the settings changed since this daemon read them' USING ERRCODE = 'BU001';
    END IF;
END $$;
