-- Pacing in one round trip per acquire and per release (quickbooks/pacing.rs; docs/benchmarks.md,
-- "Pacing: where its state lives"). The limits stay configured in Rust and come as arguments.
--
-- Call each function as a statement of its own (autocommit): its `SET LOCAL
-- synchronous_commit = off` lasts to the end of the calling transaction, so that commit does not
-- wait for the disk. (No `SET` clause on these functions: one would undo the setting on return.)

-- The bucket rule, the same as `refilled` in quickbooks/pacing.rs (a test holds the two to each
-- other): a missing bucket is full; otherwise it gains per_minute / 60000 tokens a millisecond
-- since it was last spent, never below 0 ms, up to its capacity.
CREATE FUNCTION qbo_pacing_refilled(
    tokens DOUBLE PRECISION,
    updated_ms BIGINT,
    capacity DOUBLE PRECISION,
    per_minute DOUBLE PRECISION,
    now_ms BIGINT
) RETURNS DOUBLE PRECISION
LANGUAGE sql IMMUTABLE AS $$
    SELECT least(
        capacity,
        coalesce(tokens, capacity)
            + greatest(now_ms - coalesce(updated_ms, now_ms), 0)::DOUBLE PRECISION
              * (per_minute / 60000::DOUBLE PRECISION))
$$;

-- One turn for one request to a company, under the company's advisory lock (taken first: the
-- later statements take new snapshots, so they see what the previous holder committed):
-- expired leases go; with max_in_flight leases left, not granted (empty_class NULL: wait for a
-- slot); else each class's bucket (api, and report for reports) is refilled, and the first
-- holding less than one token is named with its tokens (wait for the refill); else one token
-- of each is spent, the buckets' time set to now (never moved back), and the lease written.
CREATE FUNCTION qbo_pacing_acquire(
    p_realm_id TEXT,
    p_lock BIGINT,
    p_now_ms BIGINT,
    p_max_in_flight BIGINT,
    p_lease_id TEXT,
    p_expires_ms BIGINT,
    p_classes TEXT[],
    p_capacities DOUBLE PRECISION[],
    p_per_minute DOUBLE PRECISION[],
    OUT granted BOOLEAN,
    OUT empty_class TEXT,
    OUT empty_tokens DOUBLE PRECISION
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    in_flight BIGINT;
    refilled DOUBLE PRECISION[];
BEGIN
    SET LOCAL synchronous_commit = off;
    PERFORM pg_advisory_xact_lock(p_lock);
    granted := FALSE;
    DELETE FROM quickbooks_leases WHERE realm_id = p_realm_id AND expires_ms < p_now_ms;
    SELECT count(*) INTO in_flight FROM quickbooks_leases WHERE realm_id = p_realm_id;
    IF in_flight >= p_max_in_flight THEN
        RETURN;
    END IF;
    SELECT array_agg(
               qbo_pacing_refilled(b.tokens, b.updated_ms, u.capacity, u.per_minute, p_now_ms)
               ORDER BY u.n)
      INTO refilled
      FROM unnest(p_classes, p_capacities, p_per_minute)
               WITH ORDINALITY AS u(class, capacity, per_minute, n)
      LEFT JOIN quickbooks_budgets b ON b.realm_id = p_realm_id AND b.class = u.class;
    FOR i IN 1 .. cardinality(p_classes) LOOP
        IF refilled[i] < 1 THEN
            empty_class := p_classes[i];
            empty_tokens := refilled[i];
            RETURN;
        END IF;
    END LOOP;
    INSERT INTO quickbooks_budgets AS b (realm_id, class, tokens, updated_ms)
        SELECT p_realm_id, u.class, u.t - 1, p_now_ms
          FROM unnest(p_classes, refilled) AS u(class, t)
        ON CONFLICT (realm_id, class) DO UPDATE
            SET tokens = EXCLUDED.tokens, updated_ms = greatest(b.updated_ms, EXCLUDED.updated_ms);
    INSERT INTO quickbooks_leases (lease_id, realm_id, expires_ms)
        VALUES (p_lease_id, p_realm_id, p_expires_ms);
    granted := TRUE;
END
$$;

-- Ends a lease (the request's answer is in). A lease lost in a database crash only frees its
-- slot early, after the request it counted has long ended.
CREATE FUNCTION qbo_pacing_release(p_lease_id TEXT) RETURNS VOID
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    SET LOCAL synchronous_commit = off;
    DELETE FROM quickbooks_leases WHERE lease_id = p_lease_id;
END
$$;
