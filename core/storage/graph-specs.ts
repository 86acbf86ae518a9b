// The store of graph specs registered over HTTP (declarative graphs): every registration of an id
// is a new version. One implementation per backend (core/storage/sqlite, core/storage/postgres).

export interface GraphSpecRecord {
  graph_id: string;
  version: number;
  spec: unknown;
  created_at: string;
}

export interface GraphSpecStore {
  /** Stores `spec` as the next version of `graphId` and returns it. */
  put(graphId: string, spec: unknown): Promise<GraphSpecRecord>;
  get(graphId: string, version?: number): Promise<GraphSpecRecord | undefined>;
  versions(graphId: string): Promise<number[]>;
  /** The latest version of every graph, by id. */
  latest(): Promise<GraphSpecRecord[]>;
  /** Deletes every version; returns how many there were. */
  delete(graphId: string): Promise<number>;
}
