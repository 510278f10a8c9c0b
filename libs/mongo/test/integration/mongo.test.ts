import { Schema } from "mongoose";
import { testInfra, testLogger, uniqueDatabase } from "@chatcrm/testing";
import { MongoDatabase, TenantCollection } from "../../src";

interface Note {
  projectId: string;
  title: string;
  tags: string[];
}

const logger = testLogger("mongo-test");
let db: MongoDatabase;

beforeAll(async () => {
  db = new MongoDatabase({ url: testInfra().mongoUrl, database: uniqueDatabase("mongo"), logger });
  await db.connect();
});
afterAll(async () => {
  await db.connection.dropDatabase();
  await db.close();
});

describe("MongoDatabase on the harness", () => {
  it("writes and reads a document through mongoose and syncs declared indexes", async () => {
    const schema = new Schema<Note>({ projectId: { type: String, required: true }, title: String, tags: [String] });
    // Serves: notes of a project by title.
    schema.index({ projectId: 1, title: 1 });
    const Notes = db.connection.model<Note>("Note", schema, "notes");
    await db.syncIndexes([Notes]);

    await Notes.create({ projectId: "p1", title: "Размер XS", tags: ["vip", "new"] });
    const found = await Notes.findOne({ projectId: "p1", title: "Размер XS" }).lean();
    expect(found).toMatchObject({ title: "Размер XS", tags: ["vip", "new"] });
    const indexes = await Notes.listIndexes();
    expect(indexes.map((i) => i.key)).toContainEqual({ projectId: 1, title: 1 });
    await expect(db.ping()).resolves.toBeUndefined();
  });

  it("keeps only unique indexes when query indexes are off, and brings the others back when they are on again", async () => {
    const schema = new Schema<Note>({ projectId: { type: String, required: true }, title: String, tags: [String] });
    // Serves: a project's notes by tag.
    schema.index({ projectId: 1, tags: 1 });
    // Keeps one title per project.
    schema.index({ projectId: 1, title: 1 }, { unique: true });
    const Notes = db.connection.model<Note>("IndexedNote", schema, "indexed_notes");
    const keys = async () => (await Notes.listIndexes()).map((i) => ({ key: i.key, unique: i.unique === true }));
    const off = new MongoDatabase({ url: testInfra().mongoUrl, database: db.connection.name, logger, queryIndexes: false });
    await off.connect();
    try {
      await db.syncIndexes([Notes]);
      expect(await keys()).toEqual(expect.arrayContaining([{ key: { projectId: 1, tags: 1 }, unique: false }, { key: { projectId: 1, title: 1 }, unique: true }]));

      // A deployment that had them: the query index goes, the unique one stays and still refuses a duplicate.
      const OffNotes = off.connection.model<Note>("IndexedNote", schema, "indexed_notes");
      await off.syncIndexes([OffNotes]);
      expect(await keys()).toEqual([{ key: { _id: 1 }, unique: false }, { key: { projectId: 1, title: 1 }, unique: true }]);
      await OffNotes.create({ projectId: "p1", title: "Размер XS", tags: [] });
      await expect(OffNotes.create({ projectId: "p1", title: "Размер XS", tags: [] })).rejects.toMatchObject({ code: 11000 });

      // A fresh collection gets its unique index without the query one.
      const Fresh = off.connection.model<Note>("FreshNote", schema, "fresh_notes");
      await off.syncIndexes([Fresh]);
      expect((await Fresh.listIndexes()).map((i) => i.key)).toEqual([{ _id: 1 }, { projectId: 1, title: 1 }]);

      await db.syncIndexes([Notes]);
      expect(await keys()).toEqual(expect.arrayContaining([{ key: { projectId: 1, tags: 1 }, unique: false }]));
    } finally {
      await off.close();
    }
  });

  it("scopes every query of a TenantCollection to the given project, whatever the filter says", async () => {
    const schema = new Schema<Note>({ projectId: { type: String, required: true }, title: String, tags: [String] });
    const notes = new TenantCollection(db.connection.model<Note>("ScopedNote", schema, "scoped_notes"));
    await notes.create("alpha", { title: "mine", tags: [] });
    await notes.create("beta", { title: "theirs", tags: [] });

    expect((await notes.find("alpha").lean()).map((n) => n.title)).toEqual(["mine"]);
    // A filter naming another project cannot switch the scope: the given project wins.
    expect((await notes.find("alpha", { projectId: "beta" } as never).lean()).map((n) => n.title)).toEqual(["mine"]);
    expect(await notes.countDocuments("beta")).toBe(1);
    await notes.deleteOne("alpha", { title: "theirs" });
    expect(await notes.countDocuments("beta")).toBe(1);
    expect(() => notes.find("")).toThrow("a project id is required");
  });

  it("fails ping once closed", async () => {
    const other = new MongoDatabase({ url: testInfra().mongoUrl, database: uniqueDatabase("mongo_closed"), logger });
    await other.connect();
    await other.close();
    await expect(other.ping()).rejects.toThrow("MongoDB is not connected");
  });
});
