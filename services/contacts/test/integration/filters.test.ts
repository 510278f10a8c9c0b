import type { MessageInitShape } from "@bufbuild/protobuf";
import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import {
  ContactSort,
  ContactStatus,
  ContactTab,
  type Contact,
  type ContactFilterSchema,
  type ContactRefSchema,
  type ListContactsRequestSchema,
} from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { RpcError, Status } from "@chatcrm/grpc";
import { stopAndDrop, uniqueDatabase, uniqueName } from "@chatcrm/testing";
import { as, contactsClient, inbound, startTestContacts, type ContactsClient } from "./harness";

// One project seeded with contacts whose data is chosen so that each filter field, tab and sort has contacts it
// must return and decoys it must not. A contact is named by its key; the key maps to its messenger id.

type FilterInit = MessageInitShape<typeof ContactFilterSchema>;
type ListInit = MessageInitShape<typeof ListContactsRequestSchema>;

interface SeedContact {
  key: string;
  /** The first message, which becomes createdAt (and lastInteractionAt unless `later` is given). */
  at: string;
  first?: string;
  last?: string;
  username?: string;
  senderId?: string;
  messenger?: Messenger;
  channel?: string;
  utm?: string;
  /** A second inbound message: moves the last interaction, sets the last (not the first) UTM. */
  later?: { at: string; utm?: string };
  vars?: Record<string, string>;
  tags?: string[];
  lists?: string[];
  /** Funnel blocks of flow "sales", visited in this order. */
  blocks?: string[];
  deal?: string;
  operator?: string;
  status?: ContactStatus;
  pinned?: boolean;
  /** Left unread; every other contact is marked read. */
  unread?: boolean;
}

const BOUNDARY = "Граница";

const SEED: SeedContact[] = [
  // search
  { key: "vasya", first: "Vasya1988", last: "Ivanov", at: "2021-06-01T10:00:00Z" },
  { key: "tg1988", senderId: "7771988777", first: "Пётр", last: "Сидоров", username: "petya_tg", at: "2021-06-02T10:00:00Z" },
  { key: "ivan", first: "Ivan", last: "Smith198", username: "i_1_9_8_8", at: "2021-06-03T10:00:00Z" },
  { key: "aplusb", first: "a+b", at: "2021-06-04T10:00:00Z" },
  { key: "aab", first: "aab", last: "where", at: "2021-06-05T10:00:00Z" },
  { key: "star", first: "Zvezda", last: "Star.*", at: "2021-06-06T10:00:00Z" },
  // seed 002: "Ксения" registered before 2021-04-20 with Размер = XS
  { key: "ksenia", first: "Ксения", vars: { Размер: "XS" }, at: "2021-04-19T23:59:00Z" },
  { key: "kseniaOnDay", first: "Ксения", vars: { Размер: "XS" }, at: "2021-04-20T00:00:00Z" },
  { key: "kseniaM", first: "Ксения", vars: { Размер: "M" }, pinned: true, at: "2021-03-01T10:00:00Z" },
  { key: "kseniaLower", first: "ксения", vars: { Размер: "XS" }, at: "2021-01-10T10:00:00Z" },
  { key: "maria", first: "Мария", vars: { Размер: "XS", Формула: "(1+1)*2" }, at: "2021-01-01T10:00:00Z" },
  // registration date boundaries (UTC and Europe/Moscow, UTC+3)
  { key: "before2359", first: BOUNDARY, at: "2023-05-22T23:59:00Z" },
  { key: "onDay23", first: BOUNDARY, at: "2023-05-23T00:00:00Z" },
  { key: "before2059", first: BOUNDARY, at: "2023-05-22T20:59:00Z" },
  { key: "after0001", first: BOUNDARY, pinned: true, at: "2023-05-20T00:01:00Z" },
  { key: "prev2359", first: BOUNDARY, at: "2023-05-19T23:59:00Z" },
  { key: "prev2059", first: BOUNDARY, at: "2023-05-19T20:59:00Z" },
  // tags and lists
  { key: "vipHot", tags: ["vip", "hot"], at: "2024-01-01T10:00:00Z" },
  { key: "vipNews", tags: ["vip"], lists: ["newsletter"], at: "2024-01-02T10:00:00Z" },
  { key: "hotColdWebinar", tags: ["hot", "cold"], lists: ["newsletter", "webinar"], at: "2024-01-03T10:00:00Z" },
  // funnel and deal stages
  { key: "atStart", blocks: ["start"], deal: "won", at: "2024-01-04T10:00:00Z" },
  { key: "atPay", blocks: ["pay"], deal: "lead", at: "2024-01-05T10:00:00Z" },
  { key: "startThenPay", blocks: ["start", "pay"], at: "2024-01-06T10:00:00Z" },
  // channels, messengers, operators
  { key: "bot2Mine", channel: "bot-2", operator: "op1", unread: true, at: "2024-01-07T10:00:00Z" },
  { key: "vkMine", messenger: Messenger.VK, channel: "vk-1", operator: "op1", at: "2024-01-08T10:00:00Z" },
  { key: "waOther", messenger: Messenger.WHATSAPP, channel: "wa-1", operator: "op2", at: "2024-01-09T10:00:00Z" },
  // UTM (first touch) and statuses
  { key: "utmSpring", utm: "utm_source=vk&utm_campaign=spring", status: ContactStatus.UNSUBSCRIBED, at: "2024-01-10T10:00:00Z" },
  { key: "utmAutumn", utm: "utm_source-vk__utm_campaign-autumn", status: ContactStatus.BLOCKED, at: "2024-01-11T10:00:00Z" },
  {
    key: "googleThenVk",
    utm: "utm_source=google",
    later: { at: "2024-06-01T10:00:00Z", utm: "utm_source=vk&utm_campaign=spring" },
    status: ContactStatus.PAUSED,
    unread: true,
    at: "2024-01-12T10:00:00Z",
  },
  // variables
  { key: "price", vars: { Цена: "100", Size: "XXS" }, unread: true, at: "2024-01-13T10:00:00Z" },
  // A name holding the character the service joins names and values with in its index.
  { key: "priceOfGoods", vars: { "Цена товара": "XS", "Размер обуви": "b\u001fXS" }, at: "2024-01-14T10:00:00Z" },
];

const ALL = SEED.map((s) => s.key);
const allBut = (...excluded: string[]) => ALL.filter((k) => !excluded.includes(k));
const senderOf = (s: SeedContact) => s.senderId ?? String(700_000 + SEED.indexOf(s));
const keyBySender = new Map(SEED.map((s) => [senderOf(s), s.key]));
const keyOf = (c: Contact) => keyBySender.get(c.messengerUserId) ?? `unknown:${c.messengerUserId}`;
const sorted = (keys: string[]) => [...keys].sort();

const KSENIAS = ["ksenia", "kseniaOnDay", "kseniaM", "kseniaLower"];
const UNREAD = ["bot2Mine", "googleThenVk", "price"];
const Y2024 = SEED.filter((s) => s.at.startsWith("2024")).map((s) => s.key);

const project = uniqueName("filters");
const ids = new Map<string, string>();
let svc: Awaited<ReturnType<typeof startTestContacts>>;
let client: ContactsClient;

const byKey = (key: string): MessageInitShape<typeof ContactRefSchema> => ({ ref: { case: "contactId", value: ids.get(key)! } });
const viewerOptions = (operatorId?: string) => (operatorId ? as(project, operatorId) : as(project));

async function ingestSeed(s: SeedContact): Promise<void> {
  const common = { senderId: senderOf(s), channelId: s.channel ?? "bot-1", messenger: s.messenger ?? Messenger.TELEGRAM };
  const sender = { firstName: s.first ?? s.key, lastName: s.last ?? "", username: s.username ?? "" };
  const outcome = await svc.parts.ingest.ingest(inbound(project, { ...common, sender, startPayload: s.utm ?? "", at: new Date(s.at) }));
  if (!("contact" in outcome)) throw new Error(`seed contact ${s.key} was ignored: ${outcome.ignored}`);
  ids.set(s.key, outcome.contact._id);
  if (s.later) await svc.parts.ingest.ingest(inbound(project, { ...common, sender, startPayload: s.later.utm ?? "", at: new Date(s.later.at) }));
}

async function applySeedCommands(s: SeedContact): Promise<void> {
  const contact = byKey(s.key);
  const opts = as(project);
  if (s.vars) await client.setVariables({ contact, set: s.vars }, opts);
  if (s.tags) await client.modifyTags({ contact, add: s.tags }, opts);
  if (s.lists) await client.modifyLists({ contact, add: s.lists }, opts);
  for (const blockId of s.blocks ?? []) await client.setFunnelPosition({ contact, flowId: "sales", blockId }, opts);
  if (s.deal) await client.setDealStage({ contact, dealStage: s.deal }, opts);
  if (s.operator) await client.assignOperator({ contact, operatorId: s.operator }, opts);
  if (s.status) await client.setStatus({ contact, status: s.status }, opts);
  if (s.pinned) await client.setPinned({ contact, pinned: true }, opts);
  if (!s.unread) await client.setRead({ contact, read: true }, opts);
}

async function listAll(request: ListInit, operatorId?: string) {
  return client.listContacts({ pageSize: 200, ...request }, viewerOptions(operatorId));
}

async function streamKeys(filter: FilterInit, tab: ContactTab, operatorId?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of client.streamContacts({ filter, tab }, viewerOptions(operatorId))) keys.push(keyOf(item.contact!));
  return keys;
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

/** Every page of a list walked with next_cursor: the contacts in order, each page's size and total count. */
async function walkPages(request: ListInit, pageSize: number, projectId = project) {
  const contacts: Contact[] = [];
  const pageSizes: number[] = [];
  const totals = new Set<bigint>();
  let cursor = "";
  for (let page = 0; page < 1000; page++) {
    const res = await client.listContacts({ ...request, pageSize, cursor }, as(projectId));
    contacts.push(...res.contacts);
    pageSizes.push(res.contacts.length);
    totals.add(res.totalCount);
    if (!res.nextCursor) return { contacts, keys: contacts.map(keyOf), pageSizes, totals: [...totals] };
    cursor = res.nextCursor;
  }
  throw new Error("the cursor never ran out");
}

/** Pinned first, then the given time descending: the order seed 002 asks for, computed from the seed itself. */
function expectedOrder(time: (s: SeedContact) => string): string[] {
  return [...SEED].sort((a, b) => Number(!!b.pinned) - Number(!!a.pinned) || Date.parse(time(b)) - Date.parse(time(a))).map((s) => s.key);
}

beforeAll(async () => {
  svc = await startTestContacts(uniqueDatabase("filters"));
  client = contactsClient(svc.grpcPort);
  for (const s of SEED) await ingestSeed(s);
  for (const s of SEED) await applySeedCommands(s);
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAndDrop(svc);
});

interface Row {
  name: string;
  filter: FilterInit;
  tab?: ContactTab;
  viewer?: string;
  expected: string[];
}

const rows: Row[] = [
  // search: names, username, messenger id; case-insensitive; literal
  { name: "search 1988: first name and Telegram id only", filter: { search: "1988" }, expected: ["vasya", "tg1988"] },
  { name: "search is trimmed", filter: { search: "  1988 " }, expected: ["vasya", "tg1988"] },
  { name: "search is case-insensitive", filter: { search: "vAsYa1988" }, expected: ["vasya"] },
  { name: "search is case-insensitive in Cyrillic", filter: { search: "ксен" }, expected: KSENIAS },
  { name: "search matches the display name", filter: { search: "Vasya1988 Ivanov" }, expected: ["vasya"] },
  { name: "search matches the username", filter: { search: "PETYA_TG" }, expected: ["tg1988"] },
  { name: "search matches a messenger id substring", filter: { search: "77719" }, expected: ["tg1988"] },
  { name: "search a+b is literal", filter: { search: "a+b" }, expected: ["aplusb"] },
  { name: "search .* is literal", filter: { search: ".*" }, expected: ["star"] },
  { name: "search ( is literal", filter: { search: "(" }, expected: [] },
  { name: "search $where is literal", filter: { search: "$where" }, expected: [] },
  { name: "search ^ anchors nothing", filter: { search: "^Vasya" }, expected: [] },
  { name: "search | is literal", filter: { search: "|" }, expected: [] },
  { name: "search [ is literal", filter: { search: "[" }, expected: [] },
  { name: "search \\d is literal", filter: { search: "\\d" }, expected: [] },
  { name: "search with a NUL character finds nothing", filter: { search: "a\u0000b" }, expected: [] },
  // first / last name
  { name: "first_name substring, any case", filter: { firstName: "Ксен" }, expected: KSENIAS },
  { name: "first_name does not look at the last name", filter: { firstName: "Smith" }, expected: [] },
  { name: "last_name substring, any case", filter: { lastName: "ivan" }, expected: ["vasya"] },
  { name: "last_name is literal", filter: { lastName: "r.*" }, expected: ["star"] },
  { name: "first_name . is literal", filter: { firstName: "." }, expected: [] },
  // seed 002 combined example
  {
    name: "Ксения registered before 2021-04-20 with Размер = XS",
    filter: { firstName: "Ксения", registeredBefore: "2021-04-20", variableName: "Размер", variableValue: "XS" },
    expected: ["ksenia", "kseniaLower"],
  },
  // registration dates
  { name: "registered_before 2021-04-20", filter: { registeredBefore: "2021-04-20" }, expected: ["ksenia", "kseniaM", "kseniaLower", "maria"] },
  { name: "registered on 2021-04-20 exactly", filter: { registeredAfter: "2021-04-20", registeredBefore: "2021-04-21" }, expected: ["kseniaOnDay"] },
  {
    name: "registered_before 2023-05-23 keeps 22.05 23:59, drops 23.05 00:00",
    filter: { firstName: BOUNDARY, registeredBefore: "2023-05-23" },
    expected: ["before2359", "before2059", "after0001", "prev2359", "prev2059"],
  },
  {
    name: "registered_after 2023-05-20 keeps 20.05 00:01, drops 19.05 23:59",
    filter: { firstName: BOUNDARY, registeredAfter: "2023-05-20" },
    expected: ["before2359", "onDay23", "before2059", "after0001"],
  },
  { name: "registered between 2023-05-20 and 2023-05-23 (UTC)", filter: { registeredAfter: "2023-05-20", registeredBefore: "2023-05-23" }, expected: ["before2359", "before2059", "after0001"] },
  {
    name: "registered between 2023-05-20 and 2023-05-23 in Europe/Moscow",
    filter: { registeredAfter: "2023-05-20", registeredBefore: "2023-05-23", timeZone: "Europe/Moscow" },
    expected: ["before2059", "after0001", "prev2359"],
  },
  {
    name: "registered_before 2023-05-23 in Europe/Moscow",
    filter: { firstName: BOUNDARY, registeredBefore: "2023-05-23", timeZone: "Europe/Moscow" },
    expected: ["before2059", "after0001", "prev2359", "prev2059"],
  },
  {
    name: "registered_after 2023-05-20 in Europe/Moscow",
    filter: { firstName: BOUNDARY, registeredAfter: "2023-05-20", timeZone: "Europe/Moscow" },
    expected: ["before2359", "onDay23", "before2059", "after0001", "prev2359"],
  },
  { name: "registered_after 2024-01-01", filter: { registeredAfter: "2024-01-01" }, expected: Y2024 },
  // variables
  { name: "variable name is exact: Цена", filter: { variableName: "Цена" }, expected: ["price"] },
  { name: "variable name is exact: цен matches nothing", filter: { variableName: "цен" }, expected: [] },
  { name: "variable name Размер", filter: { variableName: "Размер" }, expected: [...KSENIAS, "maria"] },
  { name: "variable name and value", filter: { variableName: "Размер", variableValue: "XS" }, expected: ["ksenia", "kseniaOnDay", "kseniaLower", "maria"] },
  { name: "variable value is exact", filter: { variableName: "Размер", variableValue: "X" }, expected: [] },
  { name: "variable value belongs to that name", filter: { variableName: "Цена", variableValue: "XS" }, expected: [] },
  { name: "variable value alone, exact (XXS is not XS)", filter: { variableValue: "XS" }, expected: ["ksenia", "kseniaOnDay", "kseniaLower", "maria", "priceOfGoods"] },
  { name: "variable name with a space", filter: { variableName: "Цена товара" }, expected: ["priceOfGoods"] },
  { name: "variable value alone is literal", filter: { variableValue: "(1+1)*2" }, expected: ["maria"] },
  { name: "variable value alone is the whole value", filter: { variableValue: "1+1)*2" }, expected: [] },
  { name: "variable name and value do not run into each other", filter: { variableName: "a", variableValue: "b\u001fc" }, expected: [] },
  { name: "variable value alone does not reach into the name", filter: { variableValue: "b\u001fc" }, expected: [] },
  // tags and lists
  { name: "tags: any of", filter: { tags: ["vip", "cold"] }, expected: ["vipHot", "vipNews", "hotColdWebinar"] },
  { name: "tags: match all", filter: { tags: ["vip", "hot"], tagsMatchAll: true }, expected: ["vipHot"] },
  { name: "exclude_tags keeps untagged contacts", filter: { excludeTags: ["hot"] }, expected: allBut("vipHot", "hotColdWebinar") },
  { name: "tags and exclude_tags", filter: { tags: ["hot"], excludeTags: ["cold"] }, expected: ["vipHot"] },
  { name: "lists: any of", filter: { lists: ["webinar", "nobody-here"] }, expected: ["hotColdWebinar"] },
  { name: "exclude_lists", filter: { excludeLists: ["newsletter"] }, expected: allBut("vipNews", "hotColdWebinar") },
  { name: "tags and lists combine with AND", filter: { tags: ["vip"], lists: ["newsletter"] }, expected: ["vipNews"] },
  // funnel, deal stages, operators
  { name: "funnel block: current block only", filter: { funnelBlockIds: ["start"] }, expected: ["atStart"] },
  { name: "funnel blocks: any of", filter: { funnelBlockIds: ["start", "pay"] }, expected: ["atStart", "atPay", "startThenPay"] },
  { name: "deal stage", filter: { dealStages: ["won"] }, expected: ["atStart"] },
  { name: "deal stages: any of", filter: { dealStages: ["won", "lead"] }, expected: ["atStart", "atPay"] },
  { name: "operator ids", filter: { operatorIds: ["op1"] }, expected: ["bot2Mine", "vkMine"] },
  { name: "operator ids: any of", filter: { operatorIds: ["op1", "op2"] }, expected: ["bot2Mine", "vkMine", "waOther"] },
  // channels and messengers
  { name: "channels multi-select", filter: { channelIds: ["bot-2", "wa-1"] }, expected: ["bot2Mine", "waOther"] },
  { name: "messengers multi-select", filter: { messengers: [Messenger.VK, Messenger.WHATSAPP] }, expected: ["vkMine", "waOther"] },
  { name: "messenger Telegram", filter: { messengers: [Messenger.TELEGRAM] }, expected: allBut("vkMine", "waOther") },
  // UTM of the first touch
  { name: "utm source", filter: { utm: { source: "vk" } }, expected: ["utmSpring", "utmAutumn"] },
  { name: "utm source and campaign", filter: { utm: { source: "vk", campaign: "spring" } }, expected: ["utmSpring"] },
  { name: "utm campaign from a Telegram deep link", filter: { utm: { campaign: "autumn" } }, expected: ["utmAutumn"] },
  { name: "utm is the first touch, not the last", filter: { utm: { source: "google" } }, expected: ["googleThenVk"] },
  // statuses and unread
  { name: "statuses: any of", filter: { statuses: [ContactStatus.UNSUBSCRIBED, ContactStatus.BLOCKED] }, expected: ["utmSpring", "utmAutumn"] },
  { name: "status paused", filter: { statuses: [ContactStatus.PAUSED] }, expected: ["googleThenVk"] },
  { name: "status subscribed", filter: { statuses: [ContactStatus.SUBSCRIBED] }, expected: allBut("utmSpring", "utmAutumn", "googleThenVk") },
  { name: "unanswered_only", filter: { unansweredOnly: true }, expected: UNREAD },
  // tabs, for operator op1 unless said otherwise
  { name: "no filter, no tab", filter: {}, expected: ALL },
  { name: "tab ALL", filter: {}, tab: ContactTab.ALL, viewer: "op1", expected: ALL },
  { name: "tab UNANSWERED", filter: {}, tab: ContactTab.UNANSWERED, viewer: "op1", expected: UNREAD },
  { name: "tab MINE", filter: {}, tab: ContactTab.MINE, viewer: "op1", expected: ["bot2Mine", "vkMine"] },
  { name: "tab OTHERS", filter: {}, tab: ContactTab.OTHERS, viewer: "op1", expected: ["waOther"] },
  { name: "tab FREE", filter: {}, tab: ContactTab.FREE, viewer: "op1", expected: allBut("bot2Mine", "vkMine", "waOther") },
  { name: "tab FREE for an admin", filter: {}, tab: ContactTab.FREE, expected: allBut("bot2Mine", "vkMine", "waOther") },
  { name: "tab MINE for op2", filter: {}, tab: ContactTab.MINE, viewer: "op2", expected: ["waOther"] },
  { name: "tab OTHERS for op2", filter: {}, tab: ContactTab.OTHERS, viewer: "op2", expected: ["bot2Mine", "vkMine"] },
  { name: "tab OTHERS for an admin: every assigned client", filter: {}, tab: ContactTab.OTHERS, expected: ["bot2Mine", "vkMine", "waOther"] },
  { name: "tab MINE for an operator with no clients", filter: {}, tab: ContactTab.MINE, viewer: "op3", expected: [] },
  { name: "tab MINE narrows a filter", filter: { unansweredOnly: true }, tab: ContactTab.MINE, viewer: "op1", expected: ["bot2Mine"] },
  { name: "tab FREE narrows a filter", filter: { tags: ["vip"] }, tab: ContactTab.FREE, viewer: "op1", expected: ["vipHot", "vipNews"] },
];

describe("ListContacts and StreamContacts by filter", () => {
  it("seeded every contact", () => {
    expect(ids.size).toBe(SEED.length);
  });

  it.each(rows)("$name", async ({ filter, tab = ContactTab.UNSPECIFIED, viewer, expected }) => {
    const res = await listAll({ filter, tab }, viewer);
    expect(sorted(res.contacts.map(keyOf))).toEqual(sorted(expected));
    expect(res.totalCount).toBe(BigInt(expected.length));
    expect(res.nextCursor).toBe("");
    expect(sorted(await streamKeys(filter, tab, viewer))).toEqual(sorted(expected));
  });

  it("skip_total leaves the total at zero but still lists", async () => {
    const res = await listAll({ filter: { tags: ["vip"] }, skipTotal: true });
    expect(sorted(res.contacts.map(keyOf))).toEqual(["vipHot", "vipNews"]);
    expect(res.totalCount).toBe(0n);
  });
});

describe("CountTabs", () => {
  const tabs = { all: ContactTab.ALL, unanswered: ContactTab.UNANSWERED, mine: ContactTab.MINE, others: ContactTab.OTHERS, free: ContactTab.FREE } as const;

  it("counts each tab for operator op1", async () => {
    const counts = await client.countTabs({}, as(project, "op1"));
    expect({ all: counts.all, unanswered: counts.unanswered, mine: counts.mine, others: counts.others, free: counts.free }).toEqual({
      all: BigInt(ALL.length),
      unanswered: BigInt(UNREAD.length),
      mine: 2n,
      others: 1n,
      free: BigInt(ALL.length - 3),
    });
  });

  it.each<[string, FilterInit]>([
    ["no filter", {}],
    ["tags vip or hot", { tags: ["vip", "hot"] }],
    ["operators op1 and op2", { operatorIds: ["op1", "op2"] }],
    ["unread Telegram", { unansweredOnly: true, messengers: [Messenger.TELEGRAM] }],
  ])("matches the list totals of every tab under %s", async (_name, filter) => {
    const counts = await client.countTabs({ filter }, as(project, "op1"));
    for (const [name, tab] of Object.entries(tabs)) {
      const list = await listAll({ filter, tab }, "op1");
      expect({ tab: name, count: counts[name as keyof typeof tabs] }).toEqual({ tab: name, count: list.totalCount });
      expect({ tab: name, count: counts[name as keyof typeof tabs] }).toEqual({ tab: name, count: BigInt(list.contacts.length) });
    }
  });

  it("gives an admin zero in Mine and the real numbers elsewhere", async () => {
    const counts = await client.countTabs({}, as(project));
    expect(counts.mine).toBe(0n);
    expect(counts.all).toBe(BigInt(ALL.length));
    expect(counts.unanswered).toBe(BigInt(UNREAD.length));
    expect(counts.free).toBe(BigInt(ALL.length - 3));
  });

  it("refuses a bad filter", async () => {
    expect(await rpcError(client.countTabs({ filter: { clientIdContains: "1a" } }, as(project, "op1")))).toMatchObject({ code: Status.INVALID_ARGUMENT, field: "filter.client_id_contains" });
  });
});

describe("sort and keyset pagination", () => {
  const byCreation = expectedOrder((s) => s.at);
  const byInteraction = expectedOrder((s) => s.later?.at ?? s.at);

  it("CREATED lists newest contacts first, pinned ones before all", async () => {
    const res = await listAll({ sort: ContactSort.CREATED });
    expect(res.contacts.map(keyOf)).toEqual(byCreation);
    expect(byCreation.slice(0, 2)).toEqual(["after0001", "kseniaM"]);
  });

  it("lists by last interaction by default, pinned first", async () => {
    const res = await listAll({});
    expect(res.contacts.map(keyOf)).toEqual(byInteraction);
    // The contact who wrote last leads the unpinned ones, though it was created before others.
    expect(byInteraction[2]).toBe("googleThenVk");
    expect(byInteraction).not.toEqual(byCreation);
  });

  it("LAST_INTERACTION is the default order", async () => {
    const res = await listAll({ sort: ContactSort.LAST_INTERACTION });
    expect(res.contacts.map(keyOf)).toEqual(byInteraction);
  });

  it("lists pinned contacts first under a filter too", async () => {
    const res = await listAll({ filter: { firstName: "Ксен" }, sort: ContactSort.CREATED });
    expect(res.contacts.map(keyOf)).toEqual(["kseniaM", "kseniaOnDay", "ksenia", "kseniaLower"]);
  });

  it.each([
    ["last interaction", ContactSort.UNSPECIFIED, byInteraction],
    ["creation", ContactSort.CREATED, byCreation],
  ])("walks the whole list by %s in pages of 3 without duplicates or gaps", async (_name, sort, expected) => {
    const { keys, pageSizes, totals } = await walkPages({ sort }, 3);
    expect(keys).toEqual(expected);
    expect(new Set(keys).size).toBe(keys.length);
    expect(pageSizes.slice(0, -1).every((n) => n === 3)).toBe(true);
    expect(pageSizes.length).toBe(Math.ceil(ALL.length / 3));
    // Every page reports the size of the whole list, not of what is left after the cursor.
    expect(totals).toEqual([BigInt(ALL.length)]);
  });

  it("walks a filtered list in pages of 3", async () => {
    const filter = { excludeTags: ["hot"], registeredAfter: "2021-01-01" };
    const full = await listAll({ filter, sort: ContactSort.CREATED });
    const { keys } = await walkPages({ filter, sort: ContactSort.CREATED }, 3);
    expect(keys).toEqual(full.contacts.map(keyOf));
    expect(sorted(keys)).toEqual(sorted(allBut("vipHot", "hotColdWebinar")));
  });

  it("ends with an empty next_cursor exactly when the list is exhausted", async () => {
    const first = await client.listContacts({ filter: { firstName: "Ксен" }, pageSize: 2 }, as(project));
    expect(first.contacts).toHaveLength(2);
    expect(first.nextCursor).not.toBe("");
    expect(first.totalCount).toBe(4n);
    const second = await client.listContacts({ filter: { firstName: "Ксен" }, pageSize: 2, cursor: first.nextCursor }, as(project));
    expect(second.contacts).toHaveLength(2);
    expect(second.nextCursor).toBe("");
  });

  it.each([
    ["garbage", "not-a-cursor"],
    ["base64 of non-JSON", Buffer.from("hello").toString("base64url")],
    ["JSON without the fields", Buffer.from(JSON.stringify({ i: 1 })).toString("base64url")],
  ])("refuses a %s cursor", async (_name, cursor) => {
    expect(await rpcError(client.listContacts({ cursor }, as(project)))).toMatchObject({ code: Status.INVALID_ARGUMENT, field: "cursor" });
  });

  it("refuses a cursor of another sort order", async () => {
    const page = await client.listContacts({ sort: ContactSort.CREATED, pageSize: 3 }, as(project));
    expect(await rpcError(client.listContacts({ sort: ContactSort.LAST_INTERACTION, pageSize: 3, cursor: page.nextCursor }, as(project)))).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      field: "cursor",
    });
  });
});

describe("bad input", () => {
  interface BadRow {
    name: string;
    request: ListInit;
    viewer?: string;
    field: string;
  }
  const bad: BadRow[] = [
    { name: "client id with a letter", request: { filter: { clientIdContains: "1a" } }, field: "filter.client_id_contains" },
    { name: "client id with a minus", request: { filter: { clientIdContains: "-1" } }, field: "filter.client_id_contains" },
    { name: "after equal to before", request: { filter: { registeredAfter: "2023-05-23", registeredBefore: "2023-05-23" } }, field: "filter.registered_after" },
    { name: "after later than before", request: { filter: { registeredAfter: "2023-05-24", registeredBefore: "2023-05-23" } }, field: "filter.registered_after" },
    { name: "30 February", request: { filter: { registeredBefore: "2023-02-30" } }, field: "filter.registered_before" },
    { name: "a DD.MM.YYYY date", request: { filter: { registeredBefore: "23.05.2023" } }, field: "filter.registered_before" },
    { name: "month 13", request: { filter: { registeredAfter: "2023-13-01" } }, field: "filter.registered_after" },
    { name: "unknown time zone", request: { filter: { registeredAfter: "2023-05-20", timeZone: "Mars/Olympus" } }, field: "filter.time_zone" },
    { name: "unknown messenger 99", request: { filter: { messengers: [99 as Messenger] } }, field: "filter.messengers[0]" },
    { name: "unknown messenger after a known one", request: { filter: { messengers: [Messenger.TELEGRAM, 99 as Messenger] } }, field: "filter.messengers[1]" },
    { name: "unspecified messenger", request: { filter: { messengers: [Messenger.UNSPECIFIED] } }, field: "filter.messengers[0]" },
    { name: "status BLACKLISTED", request: { filter: { statuses: [ContactStatus.BLACKLISTED] } }, field: "filter.statuses[0]" },
    { name: "unknown status 99", request: { filter: { statuses: [99 as ContactStatus] } }, field: "filter.statuses[0]" },
    { name: "a 1,000-character search", request: { filter: { search: "x".repeat(1000) } }, field: "filter.search" },
    { name: "a 201-character first name", request: { filter: { firstName: "я".repeat(201) } }, field: "filter.first_name" },
    { name: "a 101-character variable name", request: { filter: { variableName: "v".repeat(101) } }, field: "filter.variable_name" },
    { name: "101 tags", request: { filter: { tags: Array.from({ length: 101 }, (_, i) => `t${i}`) } }, field: "filter.tags" },
    { name: "101 excluded lists", request: { filter: { excludeLists: Array.from({ length: 101 }, (_, i) => `l${i}`) } }, field: "filter.exclude_lists" },
    { name: "an empty tag", request: { filter: { tags: ["vip", "  "] } }, field: "filter.tags[1]" },
    { name: "tags_match_all without tags", request: { filter: { tagsMatchAll: true } }, field: "filter.tags_match_all" },
    { name: "unknown tab", request: { tab: 99 as ContactTab }, field: "tab" },
    { name: "tab MINE without an operator", request: { tab: ContactTab.MINE }, field: "tab" },
    { name: "unknown sort", request: { sort: 99 as ContactSort }, field: "sort" },
    { name: "page size 201", request: { pageSize: 201 }, field: "page_size" },
    { name: "negative page size", request: { pageSize: -1 }, field: "page_size" },
  ];

  it.each(bad)("refuses $name, naming $field", async ({ request, viewer, field }) => {
    const err = await rpcError(client.listContacts(request, viewerOptions(viewer)));
    expect({ code: err.code, field: err.field }).toEqual({ code: Status.INVALID_ARGUMENT, field });
    expect(err.message).toContain(field);
  });

  it("refuses the same filters in StreamContacts", async () => {
    for (const { request, field } of bad.filter((b) => b.request.filter || b.request.tab)) {
      const err = await rpcError(client.streamContacts({ filter: request.filter, tab: request.tab }, as(project)));
      expect({ code: err.code, field: err.field }).toEqual({ code: Status.INVALID_ARGUMENT, field });
    }
  });

  it("changes nothing", async () => {
    const before = await listAll({ sort: ContactSort.CREATED });
    for (const { request, viewer } of bad) await rpcError(client.listContacts(request, viewerOptions(viewer)));
    const after = await listAll({ sort: ContactSort.CREATED });
    expect(after).toEqual(before);
    expect(after.contacts).toHaveLength(ALL.length);
  });
});

describe("client id substring", () => {
  const numbered = uniqueName("numbered");
  const CONTACTS = 210;

  beforeAll(async () => {
    // One import gives every contact the same creation time, so the list order rests on the _id tie-break alone.
    const subscriberIds = Array.from({ length: CONTACTS }, (_, i) => String(900_000 + i)).join("\n");
    const imported = await client.importSubscribers({ channelId: "bot-1", messenger: Messenger.TELEGRAM, subscriberIds }, as(numbered));
    expect(imported.imported).toBe(CONTACTS);
  }, 60_000);

  const clientIds = (contacts: Contact[]) => contacts.map((c) => Number(c.clientId)).sort((a, b) => a - b);

  it.each<[string, number[]]>([
    ["10", [10, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 210]],
    ["21", [21, 121, 210]],
    [" 110 ", [110]],
    ["209", [209]],
    ["211", []],
  ])("%s finds client ids containing it", async (text, expected) => {
    const res = await client.listContacts({ filter: { clientIdContains: text }, pageSize: 200 }, as(numbered));
    expect(clientIds(res.contacts)).toEqual(expected);
    expect(res.totalCount).toBe(BigInt(expected.length));
  });

  it("numbered the project's contacts 1..210", async () => {
    const counts = await client.countTabs({}, as(numbered));
    expect(counts.all).toBe(BigInt(CONTACTS));
    const top = await client.getContact({ contact: { ref: { case: "clientId", value: BigInt(CONTACTS) } } }, as(numbered));
    expect(top.contact?.clientId).toBe(BigInt(CONTACTS));
  });

  it("pages through contacts with one and the same timestamp without duplicates or gaps", async () => {
    for (const sort of [ContactSort.LAST_INTERACTION, ContactSort.CREATED]) {
      const { contacts, pageSizes } = await walkPages({ sort }, 30, numbered);
      expect(clientIds(contacts)).toEqual(Array.from({ length: CONTACTS }, (_, i) => i + 1));
      expect(pageSizes).toHaveLength(CONTACTS / 30);
    }
  });

  it("gives 50 contacts when page_size is zero", async () => {
    const res = await client.listContacts({}, as(numbered));
    expect(res.contacts).toHaveLength(50);
    expect(res.nextCursor).not.toBe("");
    expect(res.totalCount).toBe(BigInt(CONTACTS));
  });

  it("streams every contact of the project, and the filtered ones", async () => {
    const all: Contact[] = [];
    for await (const item of client.streamContacts({}, as(numbered))) all.push(item.contact!);
    expect(clientIds(all)).toEqual(Array.from({ length: CONTACTS }, (_, i) => i + 1));
    const filtered: Contact[] = [];
    for await (const item of client.streamContacts({ filter: { clientIdContains: "21" } }, as(numbered))) filtered.push(item.contact!);
    expect(clientIds(filtered)).toEqual([21, 121, 210]);
  });

  it("is not a pattern: 1a is refused", async () => {
    expect(await rpcError(client.listContacts({ filter: { clientIdContains: "1a" } }, as(numbered)))).toMatchObject({ code: Status.INVALID_ARGUMENT, field: "filter.client_id_contains" });
  });
});
