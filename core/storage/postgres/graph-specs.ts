// Graph specs in Postgres (migration 3). A registration takes the next version under a
// transaction-scoped advisory lock on the id, so two processes registering one id at once still
// get distinct versions.
import type pg from "pg";
import { inTransaction } from "./pool.ts";
import type { GraphSpecRecord, GraphSpecStore } from "../graph-specs.ts";

const SPEC_LOCK = 0x52464753; // "RFGS"

interface Row {
  id: string;
  version: number;
  spec: unknown;
  created_at: string;
}

const toRecord = (r: Row): GraphSpecRecord => ({
  graph_id: r.id,
  version: r.version,
  spec: r.spec,
  created_at: r.created_at,
});

export function createPostgresGraphSpecStore(pool: pg.Pool, schema: string): GraphSpecStore {
  const G = `"${schema}".refinery_graph_specs`;
  return {
    async put(graphId, spec) {
      return inTransaction(pool, async (client) => {
        await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [
          SPEC_LOCK,
          `${schema}.${graphId}`,
        ]);
        const { rows } = await client.query<Row>(
          `INSERT INTO ${G} (id, version, spec, created_at)
           SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM ${G} WHERE id = $1
           RETURNING *`,
          [graphId, JSON.stringify(spec), new Date().toISOString()],
        );
        return toRecord(rows[0]!);
      });
    },
    async get(graphId, version) {
      const { rows } =
        version === undefined
          ? await pool.query<Row>(
              `SELECT * FROM ${G} WHERE id = $1 ORDER BY version DESC LIMIT 1`,
              [graphId],
            )
          : await pool.query<Row>(`SELECT * FROM ${G} WHERE id = $1 AND version = $2`, [
              graphId,
              version,
            ]);
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
    async versions(graphId) {
      const { rows } = await pool.query<{ version: number }>(
        `SELECT version FROM ${G} WHERE id = $1 ORDER BY version`,
        [graphId],
      );
      return rows.map((r) => r.version);
    },
    async latest() {
      const { rows } = await pool.query<Row>(
        `SELECT DISTINCT ON (id) * FROM ${G} ORDER BY id, version DESC`,
      );
      // By id in byte order, as SQLite sorts.
      return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(toRecord);
    },
    async delete(graphId) {
      const { rowCount } = await pool.query(`DELETE FROM ${G} WHERE id = $1`, [graphId]);
      return rowCount ?? 0;
    },
  };
}
