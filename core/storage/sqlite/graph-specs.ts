// Graph specs in the SQLite file, next to the checkpoints, threads and runs.
import type Database from "better-sqlite3";
import type { GraphSpecRecord, GraphSpecStore } from "../graph-specs.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS refinery_graph_specs (
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  spec TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (id, version)
);
`;

interface Row {
  id: string;
  version: number;
  spec: string;
  created_at: string;
}

const toRecord = (r: Row): GraphSpecRecord => ({
  graph_id: r.id,
  version: r.version,
  spec: JSON.parse(r.spec) as unknown,
  created_at: r.created_at,
});

export function createSqliteGraphSpecStore(db: Database.Database): GraphSpecStore {
  db.exec(SCHEMA);
  const next = db.prepare(
    "SELECT COALESCE(MAX(version), 0) + 1 AS version FROM refinery_graph_specs WHERE id = ?",
  );
  const insert = db.prepare(
    "INSERT INTO refinery_graph_specs (id, version, spec, created_at) VALUES (?, ?, ?, ?)",
  );
  const byVersion = db.prepare("SELECT * FROM refinery_graph_specs WHERE id = ? AND version = ?");
  const newest = db.prepare(
    "SELECT * FROM refinery_graph_specs WHERE id = ? ORDER BY version DESC LIMIT 1",
  );
  // One transaction: two registrations of one id at once still get distinct versions.
  const put = db.transaction((graphId: string, spec: string): Row => {
    const { version } = next.get(graphId) as { version: number };
    const created_at = new Date().toISOString();
    insert.run(graphId, version, spec, created_at);
    return { id: graphId, version, spec, created_at };
  });
  return {
    async put(graphId, spec) {
      return toRecord(put.immediate(graphId, JSON.stringify(spec)));
    },
    async get(graphId, version) {
      const row = (
        version === undefined ? newest.get(graphId) : byVersion.get(graphId, version)
      ) as Row | undefined;
      return row ? toRecord(row) : undefined;
    },
    async versions(graphId) {
      return (
        db
          .prepare("SELECT version FROM refinery_graph_specs WHERE id = ? ORDER BY version")
          .all(graphId) as { version: number }[]
      ).map((r) => r.version);
    },
    async latest() {
      const rows = db
        .prepare(
          `SELECT s.* FROM refinery_graph_specs s
           JOIN (SELECT id, MAX(version) AS version FROM refinery_graph_specs GROUP BY id) m
             ON m.id = s.id AND m.version = s.version
           ORDER BY s.id`,
        )
        .all() as Row[];
      return rows.map(toRecord);
    },
    async delete(graphId) {
      return db.prepare("DELETE FROM refinery_graph_specs WHERE id = ?").run(graphId).changes;
    },
  };
}
