-- Lease rows become reusable slots (quickbooks/pacing.rs; docs/benchmarks.md, "Pacing: slots
-- instead of lease rows"). Until now every request inserted a row and deleted it when its answer
-- came; at a firm's rate the table and its index filled with dead rows faster than vacuum took
-- them, and counting a company's leases had to step over them (pgbench: 4,000 acquire/release
-- pairs a second falling to 2,700 within a minute). Now a company keeps at most as many rows as
-- it ever had requests in flight at once, and a request takes a free one (released, or expired)
-- by updating it in place: only `holder` and `expires_ms` change, neither indexed, so the update
-- stays on its page (HOT) and leaves nothing for vacuum to find.
--
-- A row is in flight while `expires_ms` is not past; `holder` is the request holding it (NULL
-- when released). Rows written before this migration have no holder and count until they
-- expire, as they did.

ALTER TABLE quickbooks_leases ADD COLUMN holder TEXT;
ALTER TABLE quickbooks_leases SET (fillfactor = 50);
DROP INDEX quickbooks_leases_realm;
CREATE INDEX quickbooks_leases_realm ON quickbooks_leases (realm_id);

-- One turn for one request to a company, under the company's advisory lock (taken first: the
-- later statements take new snapshots, so they see what the previous holder committed): with
-- max_in_flight rows not expired, not granted (empty_class NULL: wait for a slot); else each
-- class's bucket (api, and report for reports) is refilled, and the first holding less than one
-- token is named with its tokens (wait for the refill); else one token of each is spent, the
-- buckets' time set to now (never moved back), and a free row taken for p_lease_id (a new one
-- when none is free).
CREATE OR REPLACE FUNCTION qbo_pacing_acquire(
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
    free_row TEXT;
    refilled DOUBLE PRECISION[];
BEGIN
    SET LOCAL synchronous_commit = off;
    PERFORM pg_advisory_xact_lock(p_lock);
    granted := FALSE;
    SELECT count(*) FILTER (WHERE expires_ms >= p_now_ms),
           min(lease_id) FILTER (WHERE expires_ms < p_now_ms)
      INTO in_flight, free_row
      FROM quickbooks_leases
     WHERE realm_id = p_realm_id;
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
    IF free_row IS NULL THEN
        INSERT INTO quickbooks_leases (lease_id, realm_id, expires_ms, holder)
            VALUES (p_lease_id, p_realm_id, p_expires_ms, p_lease_id);
    ELSE
        UPDATE quickbooks_leases SET holder = p_lease_id, expires_ms = p_expires_ms
         WHERE lease_id = free_row;
    END IF;
    granted := TRUE;
END
$$;

-- Ends a request's lease: its row is free again (only if that request still holds it: an expired
-- row may have been taken by another). A release lost in a database crash only frees the slot
-- early, after the request it counted has long ended.
DROP FUNCTION qbo_pacing_release(TEXT);
CREATE FUNCTION qbo_pacing_release(p_realm_id TEXT, p_lease_id TEXT) RETURNS VOID
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    SET LOCAL synchronous_commit = off;
    UPDATE quickbooks_leases SET holder = NULL, expires_ms = 0
     WHERE realm_id = p_realm_id AND holder = p_lease_id;
END
$$;
