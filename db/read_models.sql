-- Read models: per-challenge summaries of api_score that leaderboards, challenge lists and home read instead of
-- aggregating api_score (docs/architecture.md, "Read models"). Applied by db/schema.py right after schema.sql, in
-- the same transaction and under the same advisory lock. Idempotent: CREATE ... IF NOT EXISTS, CREATE OR REPLACE
-- FUNCTION, triggers created only when missing.
--
-- They are kept correct by statement-level AFTER triggers (with transition tables) on api_score and
-- exact_moderation, so any writer -- this app, Django, psql, a second process -- updates them in its own
-- transaction. Moderated scores (a row in exact_moderation) never count. Everything per challenge is serialised by
-- an advisory transaction lock (key space 0x45584143, hashtext(challenge_id)), so concurrent writers of one
-- challenge cannot interleave an incremental update with a recomputation.

-- Each user's best ranked score per challenge, in both directions (the challenge's direction can be changed by its
-- organiser), with the row reaching it: ties go to the earlier created_at, then the lower id.
CREATE TABLE IF NOT EXISTS exact_score_best (
    challenge_id varchar(100) NOT NULL,
    username varchar(150) NOT NULL,
    best_high double precision NOT NULL,
    best_high_id bigint NOT NULL,
    best_high_at timestamp with time zone NOT NULL,
    best_low double precision NOT NULL,
    best_low_id bigint NOT NULL,
    best_low_at timestamp with time zone NOT NULL,
    submissions integer NOT NULL,
    last_submission_at timestamp with time zone NOT NULL,
    CONSTRAINT exact_score_best_pkey PRIMARY KEY (challenge_id, username)
);
CREATE INDEX IF NOT EXISTS exact_score_best_high_idx
    ON exact_score_best USING btree (challenge_id, best_high DESC, best_high_at, best_high_id);
CREATE INDEX IF NOT EXISTS exact_score_best_low_idx
    ON exact_score_best USING btree (challenge_id, best_low, best_low_at, best_low_id);

-- Per challenge: ranked submissions, participants (users with a ranked submission), extremes, last submission.
CREATE TABLE IF NOT EXISTS exact_challenge_stats (
    challenge_id varchar(100) NOT NULL,
    submissions bigint NOT NULL,
    participants bigint NOT NULL,
    highest double precision NULL,
    lowest double precision NULL,
    last_submission_at timestamp with time zone NULL,
    CONSTRAINT exact_challenge_stats_pkey PRIMARY KEY (challenge_id)
);
CREATE INDEX IF NOT EXISTS exact_challenge_stats_participants_idx
    ON exact_challenge_stats USING btree (participants DESC);
CREATE INDEX IF NOT EXISTS exact_challenge_stats_submissions_idx
    ON exact_challenge_stats USING btree (submissions DESC);

-- Per username: in how many challenges they have a ranked submission (home counts distinct participants).
CREATE TABLE IF NOT EXISTS exact_participant (
    username varchar(150) NOT NULL,
    challenges integer NOT NULL,
    CONSTRAINT exact_participant_pkey PRIMARY KEY (username)
);

-- The submissions that improved a challenge's record, in time order, per direction (the "best over time" chart).
CREATE TABLE IF NOT EXISTS exact_score_record (
    challenge_id varchar(100) NOT NULL,
    higher_is_better boolean NOT NULL,
    created_at timestamp with time zone NOT NULL,
    score_id bigint NOT NULL,
    score double precision NOT NULL,
    username varchar(150) NOT NULL,
    CONSTRAINT exact_score_record_pkey PRIMARY KEY (challenge_id, higher_is_better, created_at, score_id)
);
CREATE INDEX IF NOT EXISTS exact_score_record_score_idx ON exact_score_record USING btree (score_id);

-- One row once the read models have been filled from api_score (the first time this file runs on a database).
CREATE TABLE IF NOT EXISTS exact_read_model_state (
    name varchar(40) NOT NULL,
    filled_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT exact_read_model_state_pkey PRIMARY KEY (name)
);

-- Site-wide counts home shows on every view, kept by triggers instead of counted: 'active_users' (auth_user rows
-- with is_active; counting them was half of home's time at 50,000 users). The row is only touched when the count
-- changes (a login's last_login does not), so it is held only by registrations and (de)activations. Participants
-- are counted (exact_participant, index-only): a counter row updated under the per-challenge locks of a first
-- submission could deadlock two transactions that submit to two challenges each.
CREATE TABLE IF NOT EXISTS exact_site_count (
    name varchar(40) NOT NULL,
    value bigint NOT NULL,
    CONSTRAINT exact_site_count_pkey PRIMARY KEY (name)
);

-- The all-submissions board pages over the ranked rows in either direction, ties by time then id. The key is the
-- row's primary value, as exact_ranked_score computes it for this database's version (db/upstream.py; the
-- name carries the rule, so a changed rule gets a new index).
CREATE INDEX IF NOT EXISTS @index_name(high)
    ON api_score USING btree (challenge_id, @index_score DESC, created_at, id) @index_where;
CREATE INDEX IF NOT EXISTS @index_name(low)
    ON api_score USING btree (challenge_id, @index_score, created_at, id) @index_where;

-- Serialise all read-model work on these challenges within the transaction (sorted: no deadlocks).
CREATE OR REPLACE FUNCTION exact_lock_challenges(p_challenges varchar[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(x'45584143'::int, hashtext(c))
    FROM (SELECT DISTINCT c FROM unnest(p_challenges) AS t(c) ORDER BY c) locks;
END $$;

-- Whether a score row may rank, and its primary value, whatever upstream columns api_score has right now
-- (../shared/spec/upstream-schema-versions.md): completed (when there is a status) and with a value, the value being
-- emd_score when set, else score. Read through to_jsonb, so a column that a later upstream migration adds counts at
-- once in the row-by-row paths (inserts, deletes, updates, moderation), without waiting for the app's next start,
-- and Django's own inserts of pending rows with no score never reach the NOT NULL columns below. The set-based
-- passes (the full fill, records of whole challenges) read exact_ranked_score, made at start for the columns found;
-- db/schema.py refills everything when that rule changes.
CREATE OR REPLACE FUNCTION exact_primary_value(p_row jsonb, p_score double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$ SELECT COALESCE((p_row ->> 'emd_score')::double precision, p_score) $$;

CREATE OR REPLACE FUNCTION exact_may_rank(p_row jsonb, p_score double precision) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(p_row ->> 'status', 'completed') = 'completed' AND exact_primary_value(p_row, p_score) IS NOT NULL
$$;

-- Recompute the records (both directions) of some challenges from api_score: one window pass per challenge,
-- via exact_score_challenge_user_idx-independent sequential reads of that challenge's rows only.
CREATE OR REPLACE FUNCTION exact_rebuild_records(p_challenges varchar[]) RETURNS void
LANGUAGE plpgsql SET work_mem = '64MB' AS $$  -- bulk paths sort many rows: in memory
BEGIN
    DELETE FROM exact_score_record WHERE challenge_id = ANY (p_challenges);
    INSERT INTO exact_score_record (challenge_id, higher_is_better, created_at, score_id, score, username)
    SELECT challenge_id, direction, created_at, id, score, username
    FROM (
        SELECT s.challenge_id, s.id, s.created_at, s.score, s.username,
               max(s.score) OVER w AS previous_high, min(s.score) OVER w AS previous_low
        FROM exact_ranked_score s  -- a window pass over whole challenges: the view, not JSON per row
        WHERE s.challenge_id = ANY (p_challenges)
          AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
        WINDOW w AS (PARTITION BY s.challenge_id ORDER BY s.created_at, s.id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ) running
    CROSS JOIN LATERAL (VALUES (true), (false)) AS d(direction)
    WHERE (direction AND (previous_high IS NULL OR score > previous_high))
       OR (NOT direction AND (previous_low IS NULL OR score < previous_low));
END $$;

-- Add one ranked row to the records: it is a record if it beats the latest record before it; then later records
-- it now equals or beats are records no more. (Adding a row can only raise earlier-prefix bests.)
CREATE OR REPLACE FUNCTION exact_add_record(p_id bigint, p_challenge varchar, p_username varchar, p_score float8,
                                            p_at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    previous float8;
    direction boolean;
BEGIN
    FOREACH direction IN ARRAY ARRAY[true, false] LOOP
        SELECT r.score INTO previous FROM exact_score_record r
        WHERE r.challenge_id = p_challenge AND r.higher_is_better = direction
          AND (r.created_at, r.score_id) < (p_at, p_id)
        ORDER BY r.created_at DESC, r.score_id DESC LIMIT 1;
        IF previous IS NULL OR (direction AND p_score > previous) OR (NOT direction AND p_score < previous) THEN
            DELETE FROM exact_score_record r
            WHERE r.challenge_id = p_challenge AND r.higher_is_better = direction
              AND (r.created_at, r.score_id) > (p_at, p_id)
              AND ((direction AND r.score <= p_score) OR (NOT direction AND r.score >= p_score));
            INSERT INTO exact_score_record (challenge_id, higher_is_better, created_at, score_id, score, username)
            VALUES (p_challenge, direction, p_at, p_id, p_score, p_username);
        END IF;
    END LOOP;
END $$;

-- Take rows that no longer count (deleted, moderated) out of the records. Only the stretch between the removed
-- record and the next one can change, and in it only rows beating the previous record can become records: read
-- through the score index (rows above that score), not the challenge's whole history.
CREATE OR REPLACE FUNCTION exact_remove_records(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    gone record;
    previous float8;
    next_at timestamptz;
    next_id bigint;
BEGIN
    FOR gone IN SELECT * FROM exact_score_record WHERE score_id = ANY (p_ids)
                ORDER BY challenge_id, higher_is_better, created_at, score_id LOOP
        DELETE FROM exact_score_record r
        WHERE r.challenge_id = gone.challenge_id AND r.higher_is_better = gone.higher_is_better
          AND r.created_at = gone.created_at AND r.score_id = gone.score_id;
        SELECT r.score INTO previous FROM exact_score_record r
        WHERE r.challenge_id = gone.challenge_id AND r.higher_is_better = gone.higher_is_better
          AND (r.created_at, r.score_id) < (gone.created_at, gone.score_id)
        ORDER BY r.created_at DESC, r.score_id DESC LIMIT 1;
        next_at := NULL;
        next_id := NULL;
        SELECT r.created_at, r.score_id INTO next_at, next_id FROM exact_score_record r
        WHERE r.challenge_id = gone.challenge_id AND r.higher_is_better = gone.higher_is_better
          AND (r.created_at, r.score_id) > (gone.created_at, gone.score_id)
        ORDER BY r.created_at, r.score_id LIMIT 1;
        INSERT INTO exact_score_record (challenge_id, higher_is_better, created_at, score_id, score, username)
        SELECT gone.challenge_id, gone.higher_is_better, created_at, id, score, username
        FROM (
            SELECT s.id, s.created_at, s.score, s.username,
                   CASE WHEN gone.higher_is_better THEN max(s.score) OVER w ELSE min(s.score) OVER w END AS before
            FROM (SELECT a.id, a.challenge_id, a.username, a.created_at,
                         exact_primary_value(to_jsonb(a), a.score) AS score
                  FROM api_score a
                  WHERE a.challenge_id = gone.challenge_id AND exact_may_rank(to_jsonb(a), a.score)) s
            WHERE (previous IS NULL OR (gone.higher_is_better AND s.score > previous)
                   OR (NOT gone.higher_is_better AND s.score < previous))
              AND (s.created_at, s.id) > (gone.created_at, gone.score_id)
              AND (next_at IS NULL OR (s.created_at, s.id) < (next_at, next_id))
              AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
            WINDOW w AS (ORDER BY s.created_at, s.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
        ) stretch
        WHERE before IS NULL OR (gone.higher_is_better AND score > before)
           OR (NOT gone.higher_is_better AND score < before);
    END LOOP;
END $$;

-- Recompute exact_score_best for (challenge, username) pairs from api_score (via exact_score_challenge_user_idx),
-- then exact_participant for their usernames and exact_challenge_stats for their challenges.
CREATE OR REPLACE FUNCTION exact_recompute_pairs(p_challenges varchar[], p_usernames varchar[]) RETURNS void
LANGUAGE plpgsql SET work_mem = '64MB' AS $$  -- bulk paths sort many rows: in memory
BEGIN
    WITH gone AS (
        DELETE FROM exact_score_best b
        USING (SELECT DISTINCT c, u FROM unnest(p_challenges, p_usernames) AS t(c, u)) pairs
        WHERE b.challenge_id = pairs.c AND b.username = pairs.u
        RETURNING b.username
    )
    UPDATE exact_participant p SET challenges = p.challenges - g.n
    FROM (SELECT username, count(*) AS n FROM gone GROUP BY username) g
    WHERE p.username = g.username;

    WITH pairs AS (SELECT DISTINCT c, u FROM unnest(p_challenges, p_usernames) AS t(c, u)),
    ranked AS (
        SELECT s.id, s.challenge_id, s.username, exact_primary_value(to_jsonb(s), s.score) AS score, s.created_at
        FROM pairs JOIN api_score s ON s.challenge_id = pairs.c AND s.username = pairs.u
        WHERE exact_may_rank(to_jsonb(s), s.score) AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
    ),
    added AS (
        INSERT INTO exact_score_best AS b
        SELECT g.challenge_id, g.username, h.score, h.id, h.created_at, l.score, l.id, l.created_at,
               g.submissions, g.last_at
        FROM (SELECT challenge_id, username, count(*) AS submissions, max(created_at) AS last_at
              FROM ranked GROUP BY challenge_id, username) g
        JOIN (SELECT DISTINCT ON (challenge_id, username) * FROM ranked
              ORDER BY challenge_id, username, score DESC, created_at, id) h USING (challenge_id, username)
        JOIN (SELECT DISTINCT ON (challenge_id, username) * FROM ranked
              ORDER BY challenge_id, username, score, created_at, id) l USING (challenge_id, username)
        RETURNING b.username
    )
    INSERT INTO exact_participant AS p (username, challenges)
    SELECT username, count(*) FROM added GROUP BY username
    ON CONFLICT (username) DO UPDATE SET challenges = p.challenges + excluded.challenges;

    DELETE FROM exact_participant
    WHERE challenges <= 0 AND username IN (SELECT DISTINCT u FROM unnest(p_usernames) AS t(u));

    DELETE FROM exact_challenge_stats WHERE challenge_id = ANY (p_challenges);
    INSERT INTO exact_challenge_stats (challenge_id, submissions, participants, highest, lowest, last_submission_at)
    SELECT challenge_id, sum(submissions), count(*), max(best_high), min(best_low), max(last_submission_at)
    FROM exact_score_best WHERE challenge_id = ANY (p_challenges)
    GROUP BY challenge_id;
END $$;

-- Fill every read model from api_score in set-based statements (first creation; after a TRUNCATE).
CREATE OR REPLACE FUNCTION exact_rebuild_read_models() RETURNS void
LANGUAGE plpgsql SET work_mem = '64MB' AS $$  -- bulk paths sort many rows: in memory
BEGIN
    -- Writers wait until this transaction commits, so no row lands between the fill and the triggers.
    LOCK TABLE api_score, exact_moderation IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM exact_score_best;
    DELETE FROM exact_challenge_stats;
    DELETE FROM exact_participant;
    DELETE FROM exact_score_record;
    WITH ranked AS (
        -- The set-based fill reads the view made at this start (db/upstream.py): plain columns, no JSON per row.
        SELECT s.id, s.challenge_id, s.username, s.score, s.created_at FROM exact_ranked_score s
        WHERE NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
    )
    INSERT INTO exact_score_best
    SELECT g.challenge_id, g.username, h.score, h.id, h.created_at, l.score, l.id, l.created_at,
           g.submissions, g.last_at
    FROM (SELECT challenge_id, username, count(*) AS submissions, max(created_at) AS last_at
          FROM ranked GROUP BY challenge_id, username) g
    JOIN (SELECT DISTINCT ON (challenge_id, username) * FROM ranked
          ORDER BY challenge_id, username, score DESC, created_at, id) h USING (challenge_id, username)
    JOIN (SELECT DISTINCT ON (challenge_id, username) * FROM ranked
          ORDER BY challenge_id, username, score, created_at, id) l USING (challenge_id, username);
    INSERT INTO exact_challenge_stats (challenge_id, submissions, participants, highest, lowest, last_submission_at)
    SELECT challenge_id, sum(submissions), count(*), max(best_high), min(best_low), max(last_submission_at)
    FROM exact_score_best GROUP BY challenge_id;
    INSERT INTO exact_participant (username, challenges)
    SELECT username, count(*) FROM exact_score_best GROUP BY username;
    PERFORM exact_rebuild_records(ARRAY(SELECT challenge_id FROM exact_challenge_stats));
    INSERT INTO exact_read_model_state (name) VALUES ('scores')
    ON CONFLICT (name) DO UPDATE SET filled_at = now();
    PERFORM exact_recount_site();  -- also right after bulk loads with triggers off (session_replication_role)
END $$;

-- Count the site counts from scratch (first application, rebuilds). The lock waits for writers in flight and holds
-- new ones off until this transaction commits, so no write is missed or counted twice.
CREATE OR REPLACE FUNCTION exact_recount_site() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE auth_user IN SHARE ROW EXCLUSIVE MODE;
    INSERT INTO exact_site_count (name, value)
    VALUES ('active_users', (SELECT count(*) FROM auth_user WHERE is_active))
    ON CONFLICT (name) DO UPDATE SET value = excluded.value;
    INSERT INTO exact_read_model_state (name) VALUES ('site_counts')
    ON CONFLICT (name) DO UPDATE SET filled_at = now();
END $$;

-- INSERT INTO api_score: merge the new rows into the bests incrementally (no rescan of existing rows).
CREATE OR REPLACE FUNCTION exact_score_inserted() RETURNS trigger
LANGUAGE plpgsql SET work_mem = '64MB' AS $$  -- bulk paths sort many rows: in memory
DECLARE
    challenge varchar;
    new_count bigint;
    fresh record;
BEGIN
    PERFORM exact_lock_challenges(ARRAY(SELECT DISTINCT challenge_id FROM new_rows));
    WITH ranked AS (
        SELECT n.id, n.challenge_id, n.username, exact_primary_value(to_jsonb(n), n.score) AS score, n.created_at
        FROM new_rows n
        WHERE exact_may_rank(to_jsonb(n), n.score) AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = n.id)
    ),
    grouped AS (
        SELECT g.challenge_id, g.username, h.score AS best_high, h.id AS best_high_id, h.created_at AS best_high_at,
               l.score AS best_low, l.id AS best_low_id, l.created_at AS best_low_at, g.submissions, g.last_at
        FROM (SELECT challenge_id, username, count(*) AS submissions, max(created_at) AS last_at
              FROM ranked GROUP BY challenge_id, username) g
        JOIN (SELECT DISTINCT ON (challenge_id, username) * FROM ranked
              ORDER BY challenge_id, username, score DESC, created_at, id) h USING (challenge_id, username)
        JOIN (SELECT DISTINCT ON (challenge_id, username) * FROM ranked
              ORDER BY challenge_id, username, score, created_at, id) l USING (challenge_id, username)
    ),
    merged AS (
        INSERT INTO exact_score_best AS b
        SELECT challenge_id, username, best_high, best_high_id, best_high_at, best_low, best_low_id, best_low_at,
               submissions, last_at
        FROM grouped
        ON CONFLICT (challenge_id, username) DO UPDATE SET
            (best_high, best_high_id, best_high_at) = (
                SELECT CASE WHEN better THEN excluded.best_high ELSE b.best_high END,
                       CASE WHEN better THEN excluded.best_high_id ELSE b.best_high_id END,
                       CASE WHEN better THEN excluded.best_high_at ELSE b.best_high_at END
                FROM (SELECT (-excluded.best_high, excluded.best_high_at, excluded.best_high_id)
                             < (-b.best_high, b.best_high_at, b.best_high_id) AS better) x),
            (best_low, best_low_id, best_low_at) = (
                SELECT CASE WHEN better THEN excluded.best_low ELSE b.best_low END,
                       CASE WHEN better THEN excluded.best_low_id ELSE b.best_low_id END,
                       CASE WHEN better THEN excluded.best_low_at ELSE b.best_low_at END
                FROM (SELECT (excluded.best_low, excluded.best_low_at, excluded.best_low_id)
                             < (b.best_low, b.best_low_at, b.best_low_id) AS better) x),
            submissions = b.submissions + excluded.submissions,
            last_submission_at = greatest(b.last_submission_at, excluded.last_submission_at)
        RETURNING b.challenge_id, b.username, (b.xmax = 0) AS created  -- xmax 0: inserted, not updated
    ),
    participants AS (
        INSERT INTO exact_participant AS p (username, challenges)
        SELECT username, count(*) FROM merged WHERE created GROUP BY username
        ON CONFLICT (username) DO UPDATE SET challenges = p.challenges + excluded.challenges
    )
    INSERT INTO exact_challenge_stats AS s
        (challenge_id, submissions, participants, highest, lowest, last_submission_at)
    SELECT g.challenge_id, sum(g.submissions), count(*) FILTER (WHERE m.created), max(g.best_high),
           min(g.best_low), max(g.last_at)
    FROM grouped g JOIN merged m USING (challenge_id, username)
    GROUP BY g.challenge_id
    ON CONFLICT (challenge_id) DO UPDATE SET
        submissions = s.submissions + excluded.submissions,
        participants = s.participants + excluded.participants,
        highest = greatest(s.highest, excluded.highest),
        lowest = least(s.lowest, excluded.lowest),
        last_submission_at = greatest(s.last_submission_at, excluded.last_submission_at);

    -- Records: row by row for ordinary inserts; one window pass for a bulk load into a challenge.
    FOR challenge, new_count IN SELECT challenge_id, count(*) FROM new_rows GROUP BY challenge_id LOOP
        IF new_count > 100 THEN
            PERFORM exact_rebuild_records(ARRAY[challenge]);
        ELSE
            FOR fresh IN
                SELECT n.id, n.username, exact_primary_value(to_jsonb(n), n.score) AS score, n.created_at
                FROM new_rows n
                WHERE n.challenge_id = challenge AND exact_may_rank(to_jsonb(n), n.score)
                  AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = n.id)
                ORDER BY n.created_at, n.id
            LOOP
                PERFORM exact_add_record(fresh.id, challenge, fresh.username, fresh.score, fresh.created_at);
            END LOOP;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- DELETE FROM / UPDATE api_score: recompute only the affected (challenge, username) pairs; records change only
-- when a record row went away (removing any other row cannot change them).
CREATE OR REPLACE FUNCTION exact_score_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    challenges varchar[];
BEGIN
    challenges := ARRAY(SELECT DISTINCT challenge_id FROM old_rows);
    PERFORM exact_lock_challenges(challenges);
    PERFORM exact_recompute_pairs(ARRAY(SELECT challenge_id FROM old_rows), ARRAY(SELECT username FROM old_rows));
    PERFORM exact_remove_records(ARRAY(SELECT id FROM old_rows));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION exact_score_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched varchar[];
BEGIN
    touched := ARRAY(SELECT challenge_id FROM old_rows UNION SELECT challenge_id FROM new_rows);
    PERFORM exact_lock_challenges(touched);
    PERFORM exact_recompute_pairs(
        ARRAY(SELECT challenge_id FROM old_rows UNION ALL SELECT challenge_id FROM new_rows),
        ARRAY(SELECT username FROM old_rows UNION ALL SELECT username FROM new_rows)
    );
    PERFORM exact_rebuild_records(touched);  -- edits are rare (an admin correcting a score)
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION exact_score_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM exact_score_best;
    DELETE FROM exact_challenge_stats;
    DELETE FROM exact_participant;
    DELETE FROM exact_score_record;
    RETURN NULL;
END $$;

-- exact_moderation changes which rows count: recompute the pairs of the scores concerned.
CREATE OR REPLACE FUNCTION exact_moderation_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    affected varchar[];
    restored record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT score_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT score_id FROM old_rows);
    ELSE
        ids := ARRAY(SELECT score_id FROM old_rows UNION SELECT score_id FROM new_rows);
    END IF;
    affected := ARRAY(SELECT DISTINCT challenge_id FROM api_score WHERE id = ANY (ids));
    PERFORM exact_lock_challenges(affected);
    PERFORM exact_recompute_pairs(
        ARRAY(SELECT challenge_id FROM api_score WHERE id = ANY (ids)),
        ARRAY(SELECT username FROM api_score WHERE id = ANY (ids))
    );
    IF TG_OP = 'DELETE' THEN
        -- A restored row re-enters the records like a new one.
        FOR restored IN SELECT id, challenge_id, username, exact_primary_value(to_jsonb(s), s.score) AS score,
                               created_at FROM api_score s
                        WHERE id = ANY (ids) AND exact_may_rank(to_jsonb(s), s.score)
                          AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.id)
                        ORDER BY created_at, id LOOP
            PERFORM exact_add_record(restored.id, restored.challenge_id, restored.username, restored.score,
                                     restored.created_at);
        END LOOP;
    ELSE
        PERFORM exact_remove_records(ids);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION exact_moderation_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM exact_rebuild_read_models();
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION exact_site_count_add(p_name varchar, p_delta bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_delta <> 0 THEN
        UPDATE exact_site_count SET value = value + p_delta WHERE name = p_name;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION exact_user_counted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM exact_site_count_add('active_users', (SELECT count(*) FROM new_rows WHERE is_active));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM exact_site_count_add('active_users', -(SELECT count(*) FROM old_rows WHERE is_active));
    ELSE  -- an update (a login's last_login, say) changes the count only when is_active changes
        PERFORM exact_site_count_add('active_users',
            (SELECT count(*) FROM new_rows WHERE is_active) - (SELECT count(*) FROM old_rows WHERE is_active));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION exact_user_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE exact_site_count SET value = 0 WHERE name = 'active_users';
    RETURN NULL;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_score_insert_read_models') THEN
        CREATE TRIGGER exact_score_insert_read_models AFTER INSERT ON api_score
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION exact_score_inserted();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_score_delete_read_models') THEN
        CREATE TRIGGER exact_score_delete_read_models AFTER DELETE ON api_score
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION exact_score_deleted();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_score_update_read_models') THEN
        CREATE TRIGGER exact_score_update_read_models AFTER UPDATE ON api_score
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION exact_score_updated();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_score_truncate_read_models') THEN
        CREATE TRIGGER exact_score_truncate_read_models AFTER TRUNCATE ON api_score
            FOR EACH STATEMENT EXECUTE FUNCTION exact_score_truncated();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_moderation_insert_read_models') THEN
        CREATE TRIGGER exact_moderation_insert_read_models AFTER INSERT ON exact_moderation
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION exact_moderation_changed();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_moderation_delete_read_models') THEN
        CREATE TRIGGER exact_moderation_delete_read_models AFTER DELETE ON exact_moderation
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION exact_moderation_changed();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_moderation_update_read_models') THEN
        CREATE TRIGGER exact_moderation_update_read_models AFTER UPDATE ON exact_moderation
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION exact_moderation_changed();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_moderation_truncate_read_models') THEN
        CREATE TRIGGER exact_moderation_truncate_read_models AFTER TRUNCATE ON exact_moderation
            FOR EACH STATEMENT EXECUTE FUNCTION exact_moderation_truncated();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_user_insert_site_count') THEN
        CREATE TRIGGER exact_user_insert_site_count AFTER INSERT ON auth_user
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION exact_user_counted();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_user_delete_site_count') THEN
        CREATE TRIGGER exact_user_delete_site_count AFTER DELETE ON auth_user
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION exact_user_counted();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_user_update_site_count') THEN
        CREATE TRIGGER exact_user_update_site_count AFTER UPDATE ON auth_user
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION exact_user_counted();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'exact_user_truncate_site_count') THEN
        CREATE TRIGGER exact_user_truncate_site_count AFTER TRUNCATE ON auth_user
            FOR EACH STATEMENT EXECUTE FUNCTION exact_user_truncated();
    END IF;
    -- First run on this database (e.g. one Django filled): fill from api_score once, set-based.
    IF NOT EXISTS (SELECT 1 FROM exact_read_model_state WHERE name = 'scores') THEN
        PERFORM exact_rebuild_read_models();
    END IF;
    -- First run with the site counts (the database had the other read models already): count once.
    IF NOT EXISTS (SELECT 1 FROM exact_read_model_state WHERE name = 'site_counts') THEN
        PERFORM exact_recount_site();
    END IF;
END $$;
