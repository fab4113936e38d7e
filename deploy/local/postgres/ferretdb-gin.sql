-- Indexes FerretDB 1.24 can use, on the local PostgreSQL behind it (applied by infra.sh to the
-- FerretDB database on every start; idempotent).
--
-- FerretDB 1.24 pushes an equality filter down as `_jsonb -> $1 @> $2` (a containment test
-- with the field name as a parameter), and its indexes (`_id` and every createIndex) are btree
-- indexes on `(_jsonb -> 'field')`: a btree cannot answer `@>`, so every find, update and
-- delete by `_id` or by an indexed field scans the whole table (measured: find_one by _id
-- over 20,000 documents 13-18 ms, growing with the collection). A GIN index (jsonb_path_ops)
-- on the same expression answers it: the same find_one through FerretDB 1.2-1.8 ms.
--
-- So whenever FerretDB creates a btree index on `(_jsonb -> 'field')` (a new collection's
-- `_id` index, or createIndex), this event trigger adds the GIN twin; the block at the end
-- adds them to tables created before the trigger existed. Production runs MongoDB, which
-- needs none of this.
--
-- The btree of a plain (non-unique) index on another field than `_id` is then never used:
-- FerretDB filters with `@>` only (its UPDATE/DELETE by `_id` use `=`, which the `_id` btree
-- answers; it pushes down no sort but `$natural`). Yet every write of a document adds an
-- entry to it (no HOT update: every index is on `_jsonb`), and the planner weighs it for
-- every statement (plans are made per statement here). So it is replaced by an empty
-- partial index of the same name (`WHERE false`: nothing to maintain), which FerretDB can
-- still drop. Unique ones stay: they enforce uniqueness.

CREATE OR REPLACE FUNCTION g60_gin_twin(index_oid oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  def text;
  tbl regclass;
  field text;
  twin text;
  is_unique boolean;
  idx_name text;
  twinned boolean;
BEGIN
  SELECT pg_get_indexdef(index_oid), i.indrelid::regclass, i.indisunique, c.relname
    INTO def, tbl, is_unique, idx_name
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
   WHERE i.indexrelid = index_oid AND am.amname = 'btree';
  IF def IS NULL THEN
    RETURN;
  END IF;
  twinned := false;
  FOR field IN
    SELECT m[1] FROM regexp_matches(def, '\(_jsonb -> ''([^'']+)''::text\)', 'g') AS m
  LOOP
    twin := left((SELECT relname FROM pg_class WHERE oid = index_oid), 50) || '_gin_'
            || substr(md5(field), 1, 6);
    EXECUTE format(
      'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L) jsonb_path_ops)'
      ' WITH (fastupdate = off)',
      twin, tbl, field);
    twinned := twinned OR field <> '_id';
  END LOOP;
  IF twinned AND NOT is_unique THEN  -- the btree nobody reads: an empty one in its place
    EXECUTE format('DROP INDEX %s', index_oid::regclass);
    EXECUTE format('CREATE INDEX %I ON %s ((1)) WHERE false', idx_name, tbl);
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION g60_gin_on_create_index() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index'
  LOOP
    PERFORM g60_gin_twin(cmd.objid);
  END LOOP;
END;
$$;

DROP EVENT TRIGGER IF EXISTS g60_gin_twins;
CREATE EVENT TRIGGER g60_gin_twins ON ddl_command_end
  WHEN TAG IN ('CREATE INDEX', 'CREATE TABLE')
  EXECUTE FUNCTION g60_gin_on_create_index();

-- indexes FerretDB made before the trigger was there
DO $$
DECLARE
  idx oid;
BEGIN
  FOR idx IN
    SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
       AND pg_get_indexdef(i.indexrelid) LIKE '%(_jsonb -> %'
  LOOP
    PERFORM g60_gin_twin(idx);
  END LOOP;
END;
$$;

-- twins made by an older version of this file (with a pending list): none from now on, and the
-- list they have is merged into the index
DO $$
DECLARE
  idx regclass;
BEGIN
  FOR idx IN
    SELECT c.oid::regclass FROM pg_class c JOIN pg_am am ON am.oid = c.relam
     WHERE am.amname = 'gin' AND c.relname LIKE '%\_gin\_%'
       AND NOT coalesce(c.reloptions @> ARRAY['fastupdate=off'], false)
  LOOP
    EXECUTE format('ALTER INDEX %s SET (fastupdate = off)', idx);
    PERFORM gin_clean_pending_list(idx);
  END LOOP;
END;
$$;
