import { MassActionKind, MassActionState } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { FlowCommandAction } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import { Status } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { stopAndDrop, tapTopic, testInfra, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import mongoose, { type mongo } from "mongoose";
import { as, contactsClient, inbound, startTestContacts, type ContactsClient } from "./harness";

type Service = Awaited<ReturnType<typeof startTestContacts>>;

const CONTACTS = 600;
// Above FerretDB's 99-statement limit on one bulk write, so the slicing is exercised.
const BATCH = 120;

describe("contacts: mass actions", () => {
  const database = uniqueDatabase("mass");
  const project = uniqueName("proj");
  let svc: Service;
  let client: ContactsClient;

  /** Stops the service, runs `between` on its database while nothing runs (a crash's aftermath), starts it again. */
  const restart = async (between?: (db: mongo.Db) => Promise<void>) => {
    client.close();
    // The runner first: the service's stop reaches its jobs only after the consumers have left their groups
    // (seconds), long enough on a quiet machine for a small job to finish and leave nothing to resume.
    await svc.parts.runner.stop();
    await svc.stop();
    if (between) {
      const connection = await mongoose.createConnection(testInfra().mongoUrl, { dbName: database }).asPromise();
      try {
        await between(connection.db!);
      } finally {
        await connection.close();
      }
    }
    svc = await startTestContacts(database, { MASS_ACTION_BATCH_SIZE: BATCH });
    client = contactsClient(svc.grpcPort);
  };
  const job = async (jobId: string) => (await client.getMassAction({ jobId }, as(project))).job!;
  const finished = (jobId: string) => waitFor(`job ${jobId} to finish`, async () => ((await job(jobId)).state === MassActionState.DONE ? job(jobId) : undefined), 60_000, 100);

  beforeAll(async () => {
    svc = await startTestContacts(database, { MASS_ACTION_BATCH_SIZE: BATCH });
    client = contactsClient(svc.grpcPort);
    const messages = Array.from({ length: CONTACTS }, (_, i) => inbound(project, { senderId: String(200_000 + i), channelId: i % 2 ? "bot-odd" : "bot-even" }));
    for (let i = 0; i < messages.length; i += 20) await Promise.all(messages.slice(i, i + 20).map((m) => svc.parts.ingest.ingest(m)));
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await stopAndDrop(svc);
  });

  it("survives a restart mid-way, resumes where it stopped and applies to every contact exactly once", async () => {
    const started = await client.startMassAction(
      { action: { kind: MassActionKind.ADD_TAGS, values: ["promo"] }, selection: { selection: { case: "filter", value: { filter: { channelIds: ["bot-even"] } } } } },
      as(project, "op1"),
    );
    expect(started.job?.total).toBe(BigInt(CONTACTS / 2));
    await waitFor("the job to be part-way", async () => (await job(started.job!.jobId)).done > 0n, 30_000, 20);
    // Stopped part-way; then the last progress record is lost, as a crash between applying a batch and recording
    // it would leave things. Both happen before the service comes back, so the new runner cannot finish first.
    await restart(async (db) => {
      const midway = (await db.collection("mass_actions").findOne({ _id: started.job!.jobId as never }))!;
      expect(midway.done).toBeLessThan(midway.total);
      await db.collection("mass_actions").updateOne({ _id: started.job!.jobId as never }, { $inc: { done: -BATCH }, $set: { lastId: "" } });
    });
    const done = await finished(started.job!.jobId);
    expect(done.done).toBeGreaterThanOrEqual(BigInt(CONTACTS / 2));

    const tagged = await client.listContacts({ filter: { tags: ["promo"] }, pageSize: 1 }, as(project));
    expect(tagged.totalCount).toBe(BigInt(CONTACTS / 2));
    const wrong = await client.listContacts({ filter: { tags: ["promo"], channelIds: ["bot-odd"] }, pageSize: 1 }, as(project));
    expect(wrong.totalCount).toBe(0n);
    const db = svc.context.mongo.connection.db!;
    const doubled = await db.collection("contacts").countDocuments({ projectId: project, "tags.1": { $exists: true } });
    expect(doubled).toBe(0);
    const timeline = await db.collection("timeline").countDocuments({ projectId: project, actor: `mass-action:${started.job!.jobId}` });
    expect(timeline).toBe(CONTACTS / 2);
    const audit = await db.collection("audit_log").find({ projectId: project, "details.jobId": started.job!.jobId }).toArray();
    expect(audit.map((a) => a.action).sort()).toEqual(["mass_action_done", "mass_action_started"]);
    expect(audit[0]!.actor).toBe("operator:op1");
  }, 120_000);

  it("starts a flow for each selected contact once, with a command id per job and contact", async () => {
    const commands = await tapTopic(Topics.flowCommands, project, testLogger());
    try {
      const ids = (await client.listContacts({ filter: { channelIds: ["bot-odd"] }, pageSize: 7 }, as(project))).contacts.map((c) => c.contactId);
      const started = await client.startMassAction(
        { action: { kind: MassActionKind.START_FLOW, flowId: "winter-sale", blockId: "offer" }, selection: { selection: { case: "contactIds", value: { ids } } }, idempotencyKey: "sale-1" },
        as(project),
      );
      const retried = await client.startMassAction(
        { action: { kind: MassActionKind.START_FLOW, flowId: "winter-sale" }, selection: { selection: { case: "contactIds", value: { ids } } }, idempotencyKey: "sale-1" },
        as(project),
      );
      expect(retried.job?.jobId).toBe(started.job?.jobId);
      await finished(started.job!.jobId);
      const sent = await commands.waitFor("the flow commands", (e) => e.value.flowId === "winter-sale", ids.length);
      expect(new Set(sent.map((e) => e.value.contactId))).toEqual(new Set(ids));
      expect(new Set(sent.map((e) => e.value.commandId)).size).toBe(ids.length);
      expect(sent.every((e) => e.value.action === FlowCommandAction.START && e.value.blockId === "offer")).toBe(true);
    } finally {
      await commands.close();
    }
  }, 60_000);

  it("marks all read, blocks and deletes everyone blocked (seed 002)", async () => {
    const all = await client.startMassAction({ action: { kind: MassActionKind.MARK_READ }, selection: { selection: { case: "allUnread", value: true } } }, as(project));
    await finished(all.job!.jobId);
    expect((await client.getUnreadTotals({}, as(project))).unreadContacts).toBe(0n);

    const some = (await client.listContacts({ pageSize: 5 }, as(project))).contacts.map((c) => c.contactId);
    const block = await client.startMassAction({ action: { kind: MassActionKind.BLOCK }, selection: { selection: { case: "contactIds", value: { ids: some } } } }, as(project));
    await finished(block.job!.jobId);
    const purge = await client.startMassAction({ action: { kind: MassActionKind.DELETE }, selection: { selection: { case: "unsubscribedOrBlocked", value: true } } }, as(project));
    expect((await finished(purge.job!.jobId)).done).toBe(5n);
    for (const id of some) await expect(client.getContact({ contact: { ref: { case: "contactId", value: id } } }, as(project))).rejects.toMatchObject({ code: Status.NOT_FOUND });
    expect((await client.listContacts({ pageSize: 1 }, as(project))).totalCount).toBe(BigInt(CONTACTS - 5));
  }, 60_000);

  it("refuses a mass action without values or selection, naming the field", async () => {
    await expect(client.startMassAction({ action: { kind: MassActionKind.ADD_TAGS }, selection: { selection: { case: "allUnread", value: true } } }, as(project))).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
      field: "action.values",
    });
    await expect(client.startMassAction({ action: { kind: MassActionKind.PIN }, selection: {} }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "selection" });
    await expect(client.startMassAction({ action: { kind: MassActionKind.PIN }, selection: { selection: { case: "filter", value: { filter: { registeredAfter: "yesterday" } } } } }, as(project))).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
      field: "selection.filter.filter.registered_after",
    });
    expect((await client.listMassActions({}, as(project))).jobs.every((j) => j.state === MassActionState.DONE)).toBe(true);
  });
});
