import mongoose, { type Connection, type Model } from "mongoose";
import type { Logger } from "@chatcrm/logging";

/** What index sync needs of a model; any mongoose Model fits. */
export type IndexedModel = Pick<Model<never>, "syncIndexes" | "diffIndexes" | "listIndexes" | "cleanIndexes" | "createIndexes" | "createCollection">;

export interface MongoSettings {
  url: string;
  /** The service's own database; no two services share one. */
  database: string;
  logger: Logger;
  serverSelectionTimeoutMs?: number;
  /**
   * Create the indexes that only serve queries (every non-unique one); true unless said otherwise. FerretDB 1.24 on
   * SQLite never uses them (it pushes down only `_id` equality and scans for the rest) yet maintains each on every
   * insert (services/flow-runtime/bench/REPORT.md, run 17, measures the cost). Unique indexes are always created:
   * they keep data right on any server.
   */
  queryIndexes?: boolean;
}

/**
 * One service's MongoDB database: its own mongoose connection (never the global one, so two services can share
 * a process in tests), explicit index sync at start-up instead of mongoose's background autoIndex, a ping for
 * health, and a close for shutdown.
 */
export class MongoDatabase {
  readonly connection: Connection;
  private readonly log: Logger;

  constructor(private readonly settings: MongoSettings) {
    this.log = settings.logger.child({ component: "mongo", database: settings.database });
    this.connection = mongoose.createConnection(settings.url, {
      dbName: settings.database,
      autoIndex: false,
      autoCreate: true,
      serverSelectionTimeoutMS: settings.serverSelectionTimeoutMs ?? 10_000,
      // A server that stops answering (FerretDB 1.24 has wedged on one database under load) must fail the
      // operation, not hold it forever: callers retry or report, and a stopping service can finish.
      socketTimeoutMS: 60_000,
    });
    // Without a listener, a connection error after start-up would crash the process; health reports it instead.
    this.connection.on("error", (err) => this.log.error({ err }, "MongoDB connection error"));
  }

  async connect(): Promise<void> {
    await this.connection.asPromise();
    this.log.info("connected to MongoDB");
  }

  /**
   * Makes each model's indexes match its schema (creating missing ones, dropping ones no schema declares), so a
   * deploy carries its indexes with it. Without query indexes only the unique ones are wanted, and any other
   * found (made when they were on) is dropped.
   */
  async syncIndexes(models: IndexedModel[]): Promise<void> {
    if (this.settings.queryIndexes === false) this.log.info("query indexes are off: only unique indexes are kept");
    for (const model of models) {
      if (this.settings.queryIndexes !== false) await model.syncIndexes();
      else await syncUniqueIndexes(model);
    }
  }

  /** Throws when the server does not answer a ping. */
  async ping(): Promise<void> {
    const db = this.connection.db;
    if (!db || this.connection.readyState !== 1) throw new Error("MongoDB is not connected");
    await db.admin().command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

/** Model.syncIndexes with only the schema's unique indexes counted as declared. */
async function syncUniqueIndexes(model: IndexedModel): Promise<void> {
  // As syncIndexes does: the collection exists from start-up, whether or not it gets an index.
  await model.createCollection().catch((err: { code?: number }) => {
    if (err.code !== 48) throw err;
  });
  const diff = await model.diffIndexes({ indexOptionsToCreate: true });
  const toDrop = diff.toDrop as string[];
  const missingUnique = (diff.toCreate as [Record<string, unknown>, { unique?: boolean } | undefined][]).filter(([, options]) => options?.unique === true);
  const forQueriesOnly = (await model.listIndexes()).filter((index) => index.name !== "_id_" && index.unique !== true && !toDrop.includes(index.name!)).map((index) => index.name!);
  await model.cleanIndexes({ toDrop: [...toDrop, ...forQueriesOnly] });
  // `toCreate` is how syncIndexes hands its diff on; mongoose's typings do not list it.
  if (missingUnique.length > 0) await model.createIndexes({ toCreate: missingUnique } as Parameters<IndexedModel["createIndexes"]>[0]);
}
