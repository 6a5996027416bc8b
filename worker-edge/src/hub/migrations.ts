import * as clock from "../clock.js";

/**
 * The hub's storage schema as an ordered list of versioned steps, applied before the object serves anything.
 * Durable Object SQLite has no migrations of its own, and `CREATE TABLE IF NOT EXISTS` never alters a table that
 * exists: a change to the schema is a new step appended here, never an edit of a shipped one. Steps are additive
 * (a table, a column with a default, an index), so the release before a step still runs on the storage after it.
 */
interface Migration {
  version: number;
  name: string;
  up: (sql: SqlStorage) => void;
}

/** Every table as the last release without versions shipped it (commit e35e344). */
const UNVERSIONED_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
  channel_id TEXT PRIMARY KEY, name TEXT NOT NULL, parent_id TEXT, user_limit INTEGER NOT NULL,
  creator_id TEXT, empty_since INTEGER
);
CREATE TABLE IF NOT EXISTS members (
  user_id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, username TEXT, avatar TEXT
);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, event TEXT NOT NULL, channel_id TEXT NOT NULL, message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_ids (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ended_rooms (channel_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS displaced_rooms (channel_id TEXT PRIMARY KEY, creator_id TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS seen_ids_at ON seen_ids (at);
CREATE TABLE IF NOT EXISTS idempotency (
  user_id TEXT NOT NULL, key TEXT NOT NULL, result TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (user_id, key)
);
CREATE TABLE IF NOT EXISTS create_buckets (user_id TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sync_parts (
  sync_id TEXT NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL, picture TEXT NOT NULL, at INTEGER NOT NULL,
  arrival INTEGER NOT NULL, PRIMARY KEY (sync_id, idx)
);
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    // Storage of any release before versions (test/fixtures/ holds each shipped schema) becomes the last one's.
    version: 1,
    name: "the unversioned schema",
    up: (sql) => {
      sql.exec(UNVERSIONED_SCHEMA);
      // Added to the CREATE statement after a release had created the table without it.
      if (!hasColumn(sql, "sync_parts", "arrival")) sql.exec("ALTER TABLE sync_parts ADD COLUMN arrival INTEGER NOT NULL DEFAULT 0");
    },
  },
  {
    // Which multi-part syncs the hub has seen, so a part's fate never depends on an id window (sync-parts.ts).
    version: 2,
    name: "the sync ledger",
    up: (sql) => {
      sql.exec(`CREATE TABLE syncs (
        sync_id TEXT PRIMARY KEY, first_arrival INTEGER NOT NULL, count INTEGER NOT NULL, state TEXT NOT NULL, at INTEGER NOT NULL
      )`);
      sql.exec("CREATE INDEX syncs_first_arrival ON syncs (first_arrival)");
      sql.exec(`INSERT INTO syncs (sync_id, first_arrival, count, state, at)
        SELECT sync_id, MIN(arrival), MAX(count), 'open', MAX(at) FROM sync_parts GROUP BY sync_id`);
    },
  },
  {
    // Whether a room has members is asked on every arrival and departure: by index, not by a scan of members.
    version: 3,
    name: "members by room",
    up: (sql) => sql.exec("CREATE INDEX members_channel ON members (channel_id)"),
  },
  {
    // Each member's media flags (a bit each, hub/media.ts), the flags clients were last told, and when the
    // coalescing window of a change ends (by index: the alarm asks for the earliest).
    version: 4,
    name: "members' media",
    up: (sql) => {
      sql.exec("ALTER TABLE members ADD COLUMN media INTEGER NOT NULL DEFAULT 0");
      sql.exec("ALTER TABLE members ADD COLUMN media_published INTEGER NOT NULL DEFAULT 0");
      sql.exec("ALTER TABLE members ADD COLUMN media_due INTEGER");
      sql.exec("CREATE INDEX members_media_due ON members (media_due)");
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings the storage to SCHEMA_VERSION, each step in its own transaction with its version row, so a step that
 * fails leaves the storage at the version before it (and the object refuses to serve). Returns the versions.
 */
export function migrate(storage: DurableObjectStorage): { from: number; to: number } {
  const { sql } = storage;
  sql.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, at INTEGER NOT NULL)");
  const from = currentVersion(sql);
  for (const migration of MIGRATIONS) {
    if (migration.version <= from) continue;
    storage.transactionSync(() => {
      migration.up(sql);
      sql.exec("INSERT INTO schema_migrations (version, name, at) VALUES (?, ?, ?)", migration.version, migration.name, clock.now());
    });
  }
  return { from, to: Math.max(from, SCHEMA_VERSION) };
}

export function currentVersion(sql: SqlStorage): number {
  return Number(sql.exec<{ version: number | null }>("SELECT MAX(version) AS version FROM schema_migrations").one().version ?? 0);
}

function hasColumn(sql: SqlStorage, table: string, column: string): boolean {
  return sql.exec("SELECT 1 FROM pragma_table_info(?) WHERE name = ?", table, column).toArray().length > 0;
}
