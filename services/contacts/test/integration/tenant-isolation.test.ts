import type { MessageInitShape } from "@bufbuild/protobuf";
import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import {
  AnswerField,
  ContactStatus,
  ContactTab,
  MassActionKind,
  MassActionState,
  type Contact,
  type ContactFilterSchema,
  type ContactRefSchema,
  type MassActionSchema,
  type SelectionSchema,
} from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { RpcError, Status } from "@chatcrm/grpc";
import { stopAndDrop, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { as, contactsClient, inbound, startTestContacts, type ContactsClient } from "./harness";

// Two projects in one service. Project A has Alice (client id 1) and Anna (client id 2); project B has Bob, the
// same Telegram subscriber as Alice in the same channel id, and also client id 1. Nothing B does may read or
// change A's contacts.

type RefInit = MessageInitShape<typeof ContactRefSchema>;
type FilterInit = MessageInitShape<typeof ContactFilterSchema>;
type MassActionInit = MessageInitShape<typeof MassActionSchema>;
type SelectionInit = MessageInitShape<typeof SelectionSchema>;

const A = uniqueName("tenant-a");
const B = uniqueName("tenant-b");
const SHARED_SENDER = "424242";

let svc: Awaited<ReturnType<typeof startTestContacts>>;
let client: ContactsClient;
let alice: Contact;
let anna: Contact;
let bob: Contact;

const byId = (contactId: string): RefInit => ({ ref: { case: "contactId", value: contactId } });
const byClientId = (clientId: bigint): RefInit => ({ ref: { case: "clientId", value: clientId } });
const ids = (contacts: Contact[]) => contacts.map((c) => c.contactId).sort();

async function ingestContact(projectId: string, senderId: string, firstName: string, messages: number): Promise<Contact> {
  let contactId = "";
  for (let i = 0; i < messages; i++) {
    const outcome = await svc.parts.ingest.ingest(inbound(projectId, { senderId, channelId: "bot-1", messenger: Messenger.TELEGRAM, sender: { firstName } }));
    if (!("contact" in outcome)) throw new Error(`${firstName}'s message was ignored: ${outcome.ignored}`);
    contactId = outcome.contact._id;
  }
  return (await client.getContact({ contact: byId(contactId) }, as(projectId))).contact!;
}

/** The error a call fails with; fails the test if the call succeeds. */
async function rpcError(call: Promise<unknown> | AsyncIterable<unknown>): Promise<RpcError> {
  try {
    if (Symbol.asyncIterator in call) for await (const _ of call);
    else await call;
  } catch (err) {
    if (err instanceof RpcError) return err;
    throw err;
  }
  throw new Error("the call succeeded, but an error was expected");
}

async function streamIds(projectId: string, filter: FilterInit = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const item of client.streamContacts({ filter }, as(projectId))) out.push(item.contact!.contactId);
  return out.sort();
}

/** A's contacts as A sees them, with their timelines: what must not change. */
async function snapshotOfA() {
  const list = await client.listContacts({ pageSize: 200 }, as(A));
  const timelines = await Promise.all(list.contacts.map((c) => client.listTimeline({ contact: byId(c.contactId), pageSize: 200 }, as(A))));
  return { list, timelines, unread: await client.getUnreadTotals({}, as(A)) };
}

async function runMassActionInB(action: MassActionInit, selection: SelectionInit) {
  const started = await client.startMassAction({ action, selection }, as(B));
  const jobId = started.job!.jobId;
  return waitFor(
    `mass action ${jobId} to finish`,
    async () => {
      const job = (await client.getMassAction({ jobId }, as(B))).job!;
      if (job.state === MassActionState.FAILED) throw new Error(`mass action failed: ${job.error}`);
      return job.state === MassActionState.DONE ? job : undefined;
    },
    20_000,
  );
}

beforeAll(async () => {
  svc = await startTestContacts(uniqueDatabase("tenants"));
  client = contactsClient(svc.grpcPort);
  alice = await ingestContact(A, SHARED_SENDER, "Alice", 2);
  anna = await ingestContact(A, "434343", "Anna", 1);
  bob = await ingestContact(B, SHARED_SENDER, "Bob", 1);
  await client.modifyTags({ contact: byId(alice.contactId), add: ["a-only"] }, as(A));
  await client.setVariables({ contact: byId(alice.contactId), set: { Город: "Москва" } }, as(A));
  await client.assignOperator({ contact: byId(alice.contactId), operatorId: "op1" }, as(A));
  await client.assignOperator({ contact: byId(bob.contactId), operatorId: "op1" }, as(B));
  alice = (await client.getContact({ contact: byId(alice.contactId) }, as(A))).contact!;
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAndDrop(svc);
});

describe("reading across projects", () => {
  it("gives each project its own contact for the same subscriber, both with client id 1", () => {
    expect(alice.clientId).toBe(1n);
    expect(anna.clientId).toBe(2n);
    expect(bob.clientId).toBe(1n);
    expect(bob.messengerUserId).toBe(alice.messengerUserId);
    expect(bob.contactId).not.toBe(alice.contactId);
  });

  it("resolves client id 1 to the caller's own contact", async () => {
    expect((await client.getContact({ contact: byClientId(1n) }, as(A))).contact?.contactId).toBe(alice.contactId);
    expect((await client.getContact({ contact: byClientId(1n) }, as(B))).contact?.contactId).toBe(bob.contactId);
  });

  it("does not find A's contact from B by contact id", async () => {
    expect(await rpcError(client.getContact({ contact: byId(alice.contactId) }, as(B)))).toMatchObject({ code: Status.NOT_FOUND });
  });

  it("does not find A's client id 2 from B", async () => {
    expect(await rpcError(client.getContact({ contact: byClientId(2n) }, as(B)))).toMatchObject({ code: Status.NOT_FOUND });
  });

  it("does not show A's timeline to B", async () => {
    expect(await rpcError(client.listTimeline({ contact: byId(alice.contactId) }, as(B)))).toMatchObject({ code: Status.NOT_FOUND });
  });

  it("lists only B's contacts to B, whatever the filter", async () => {
    const all = await client.listContacts({ pageSize: 200 }, as(B));
    expect(ids(all.contacts)).toEqual([bob.contactId]);
    expect(all.totalCount).toBe(1n);
    const cases: [FilterInit, string[]][] = [
      [{ search: "Alice" }, []],
      [{ tags: ["a-only"] }, []],
      [{ variableName: "Город" }, []],
      [{ clientIdContains: "2" }, []],
      [{ search: SHARED_SENDER }, [bob.contactId]],
    ];
    for (const [filter, expected] of cases) {
      const res = await client.listContacts({ filter, pageSize: 200 }, as(B));
      expect({ filter, found: ids(res.contacts), total: res.totalCount }).toEqual({ filter, found: expected, total: BigInt(expected.length) });
    }
  });

  it("lists only B's clients in B's tabs for an operator both projects share", async () => {
    const mine = await client.listContacts({ tab: ContactTab.MINE, pageSize: 200 }, as(B, "op1"));
    expect(ids(mine.contacts)).toEqual([bob.contactId]);
    const counts = await client.countTabs({}, as(B, "op1"));
    expect({ all: counts.all, unanswered: counts.unanswered, mine: counts.mine, others: counts.others, free: counts.free }).toEqual({ all: 1n, unanswered: 1n, mine: 1n, others: 0n, free: 0n });
  });

  it("streams only B's contacts to B", async () => {
    expect(await streamIds(B)).toEqual([bob.contactId]);
    expect(await streamIds(B, { tags: ["a-only"] })).toEqual([]);
    expect(await streamIds(A)).toEqual([alice.contactId, anna.contactId].sort());
  });

  it("counts only the caller's project in unread totals", async () => {
    expect(await client.getUnreadTotals({}, as(A))).toMatchObject({ unreadContacts: 2n, unreadMessages: 3n });
    expect(await client.getUnreadTotals({}, as(B))).toMatchObject({ unreadContacts: 1n, unreadMessages: 1n });
    expect(await client.getUnreadTotals({}, as(A, "op1"))).toMatchObject({ unreadContacts: 1n, unreadMessages: 2n });
    expect(await client.getUnreadTotals({}, as(B, "op1"))).toMatchObject({ unreadContacts: 1n, unreadMessages: 1n });
  });
});

describe("commands from B on A's contacts", () => {
  const commands: [string, (contact: RefInit) => Promise<unknown>][] = [
    ["setVariables", (contact) => client.setVariables({ contact, set: { Город: "Тверь" } }, as(B))],
    ["setAnswer", (contact) => client.setAnswer({ contact, field: AnswerField.FREE_TEXT, value: "taken" }, as(B))],
    ["modifyTags", (contact) => client.modifyTags({ contact, add: ["from-b"], remove: ["a-only"] }, as(B))],
    ["modifyLists", (contact) => client.modifyLists({ contact, add: ["from-b"] }, as(B))],
    ["setStatus", (contact) => client.setStatus({ contact, status: ContactStatus.BLOCKED }, as(B))],
    ["setFunnelPosition", (contact) => client.setFunnelPosition({ contact, flowId: "f", blockId: "b" }, as(B))],
    ["setDealStage", (contact) => client.setDealStage({ contact, dealStage: "won" }, as(B))],
    ["setRead", (contact) => client.setRead({ contact, read: true }, as(B))],
    ["assignOperator", (contact) => client.assignOperator({ contact, operatorId: "intruder" }, as(B, "intruder"))],
    ["setPinned", (contact) => client.setPinned({ contact, pinned: true }, as(B))],
    ["addComment", (contact) => client.addComment({ contact, text: "from B", commentId: "b-1" }, as(B))],
    ["deleteContact", (contact) => client.deleteContact({ contact, blacklist: true }, as(B))],
  ];

  it.each(commands)("%s by contact id is NOT_FOUND", async (_name, run) => {
    expect(await rpcError(run(byId(alice.contactId)))).toMatchObject({ code: Status.NOT_FOUND });
  });

  it.each(commands)("%s by A's client id 2 is NOT_FOUND", async (_name, run) => {
    expect(await rpcError(run(byClientId(2n)))).toMatchObject({ code: Status.NOT_FOUND });
  });

  it("change nothing in A", async () => {
    const before = await snapshotOfA();
    for (const [, run] of commands) await rpcError(run(byId(alice.contactId)));
    for (const [, run] of commands) await rpcError(run(byId(anna.contactId)));
    expect(await snapshotOfA()).toEqual(before);
    expect(before.list.contacts).toHaveLength(2);
    expect(before.list.contacts.find((c) => c.contactId === alice.contactId)).toMatchObject({ tags: ["a-only"], variables: { Город: "Москва" }, operatorId: "op1", pinned: false, unread: true });
  });
});

describe("mass actions started in B", () => {
  const explicitA = (): SelectionInit => ({ selection: { case: "contactIds", value: { ids: [alice.contactId, anna.contactId] } } });

  it.each<[string, MassActionInit]>([
    ["add tags", { kind: MassActionKind.ADD_TAGS, values: ["from-b"] }],
    ["remove tags", { kind: MassActionKind.REMOVE_TAGS, values: ["a-only"] }],
    ["mark read", { kind: MassActionKind.MARK_READ }],
    ["block", { kind: MassActionKind.BLOCK }],
    ["pin", { kind: MassActionKind.PIN }],
    ["assign an operator", { kind: MassActionKind.ASSIGN_OPERATOR, operatorId: "intruder" }],
    ["delete with blacklist", { kind: MassActionKind.DELETE, blacklist: true }],
  ])("with an explicit selection of A's ids (%s) selects nothing and changes nothing in A", async (_name, action) => {
    const before = await snapshotOfA();
    const job = await runMassActionInB(action, explicitA());
    expect({ total: job.total, done: job.done }).toEqual({ total: 0n, done: 0n });
    expect(await snapshotOfA()).toEqual(before);
  });

  it("over B's whole filter changes only B's contacts", async () => {
    const before = await snapshotOfA();
    const job = await runMassActionInB({ kind: MassActionKind.ADD_TAGS, values: ["b-wide"] }, { selection: { case: "filter", value: { filter: {} } } });
    expect(job.total).toBe(1n);
    expect((await client.getContact({ contact: byId(bob.contactId) }, as(B))).contact?.tags).toEqual(["b-wide"]);
    expect(await snapshotOfA()).toEqual(before);
  });

  it("marking all unread read in B leaves A's unread alone", async () => {
    const job = await runMassActionInB({ kind: MassActionKind.MARK_READ }, { selection: { case: "allUnread", value: true } });
    expect(job.total).toBe(1n);
    expect(await client.getUnreadTotals({}, as(B))).toMatchObject({ unreadContacts: 0n, unreadMessages: 0n });
    expect(await client.getUnreadTotals({}, as(A))).toMatchObject({ unreadContacts: 2n, unreadMessages: 3n });
  });

  it("keeps B's jobs out of A's reach", async () => {
    const { jobs } = await client.listMassActions({ pageSize: 100 }, as(B));
    expect(jobs.length).toBeGreaterThan(0);
    expect((await client.listMassActions({ pageSize: 100 }, as(A))).jobs).toEqual([]);
    expect(await rpcError(client.getMassAction({ jobId: jobs[0]!.jobId }, as(A)))).toMatchObject({ code: Status.NOT_FOUND });
  });

  it("leaves A's subscriber able to write to A after B tried to delete and blacklist them", async () => {
    const outcome = await svc.parts.ingest.ingest(inbound(A, { senderId: SHARED_SENDER, channelId: "bot-1", messenger: Messenger.TELEGRAM, sender: { firstName: "Alice" } }));
    expect("contact" in outcome && outcome.contact._id).toBe(alice.contactId);
  });
});

describe("saved filters", () => {
  it("are not listed or deletable from another project", async () => {
    const saved = (await client.createSavedFilter({ name: "A's VIPs", filter: { tags: ["a-only"] } }, as(A))).savedFilter!;
    expect((await client.listSavedFilters({}, as(B))).savedFilters).toEqual([]);
    expect(await rpcError(client.deleteSavedFilter({ filterId: saved.filterId }, as(B)))).toMatchObject({ code: Status.NOT_FOUND });
    expect((await client.listSavedFilters({}, as(A))).savedFilters.map((f) => f.filterId)).toEqual([saved.filterId]);
  });
});

describe("import", () => {
  it("imports A's subscriber into B as a new contact of B and leaves A's alone", async () => {
    const before = await snapshotOfA();
    const res = await client.importSubscribers({ channelId: "bot-1", messenger: Messenger.TELEGRAM, subscriberIds: anna.messengerUserId }, as(B));
    expect({ imported: res.imported, skipped: res.skippedDuplicates, invalid: res.invalid }).toEqual({ imported: 1, skipped: 0, invalid: [] });
    const inB = await client.listContacts({ filter: { search: anna.messengerUserId } }, as(B));
    expect(inB.contacts.map((c) => c.contactId)).not.toContain(anna.contactId);
    expect(inB.totalCount).toBe(1n);
    expect(await snapshotOfA()).toEqual(before);
  });
});

describe("calls without a project", () => {
  const noProject = { metadata: {} };
  const blankProject = { metadata: { "x-chatcrm-project": "  " } };

  it.each([
    ["getContact", (opts: typeof noProject) => client.getContact({ contact: byClientId(1n) }, opts)],
    ["listContacts", (opts: typeof noProject) => client.listContacts({}, opts)],
    ["countTabs", (opts: typeof noProject) => client.countTabs({}, opts)],
    ["getUnreadTotals", (opts: typeof noProject) => client.getUnreadTotals({}, opts)],
    ["streamContacts", (opts: typeof noProject) => client.streamContacts({}, opts)],
    ["modifyTags", (opts: typeof noProject) => client.modifyTags({ contact: byId(alice.contactId), add: ["x"] }, opts)],
    ["startMassAction", (opts: typeof noProject) => client.startMassAction({ action: { kind: MassActionKind.PIN }, selection: { selection: { case: "allUnread", value: true } } }, opts)],
  ])("%s is UNAUTHENTICATED without project metadata, or with a blank one", async (_name, call) => {
    expect(await rpcError(call(noProject))).toMatchObject({ code: Status.UNAUTHENTICATED });
    expect(await rpcError(call(blankProject))).toMatchObject({ code: Status.UNAUTHENTICATED });
  });

  it("changed nothing", async () => {
    const contact = (await client.getContact({ contact: byId(alice.contactId) }, as(A))).contact!;
    expect(contact.tags).toEqual(["a-only"]);
    expect((await client.listMassActions({}, as(A))).jobs).toEqual([]);
  });
});
