import mongoose, { type Connection } from "mongoose";
import type { Logger } from "@chatcrm/logging";

/** What index sync needs of a model; any mongoose Model fits. */
export interface IndexedModel {
  syncIndexes(): Promise<unknown>;
}

export interface MongoSettings {
  url: string;
  /** The service's own database; no two services share one. */
  database: string;
  logger: Logger;
  serverSelectionTimeoutMs?: number;
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
   * deploy carries its indexes with it.
   */
  async syncIndexes(models: IndexedModel[]): Promise<void> {
    for (const model of models) await model.syncIndexes();
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
