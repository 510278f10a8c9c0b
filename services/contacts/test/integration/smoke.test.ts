import { startTestContacts, contactsClient, as, inbound } from "./harness";
import { uniqueDatabase } from "@chatcrm/testing";

test("smoke", async () => {
  const svc = await startTestContacts(uniqueDatabase("smoke"));
  const c = contactsClient(svc.grpcPort);
  try {
    const r = await svc.parts.ingest.ingest(inbound("p1", { senderId: "7771988777", startPayload: "utm_source-vk__utm_campaign-spring" }));
    console.log(JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? String(v) : v)).slice(0, 400));
    const list = await c.listContacts({ filter: { search: "1988" } }, as("p1"));
    console.log(list.totalCount, list.contacts.length, list.contacts[0]?.firstUtm);
    const id = list.contacts[0]!.contactId;
    const v = await c.setVariables({ contact: { ref: { case: "contactId", value: id } }, set: { "Размер": "XS", "a.b c": "1" } }, as("p1"));
    console.log(v.contact?.variables);
    const f = await c.listContacts({ filter: { variableName: "Размер", variableValue: "XS" } }, as("p1"));
    console.log("var filter", f.totalCount);
    const t = await c.listTimeline({ contact: { ref: { case: "clientId", value: 1n } } }, as("p1"));
    console.log(t.entries.map((e) => e.kind + ":" + e.subject));
    const job = await c.startMassAction({ action: { kind: 1, values: ["vip"] }, selection: { selection: { case: "filter", value: { filter: {} } } } }, as("p1"));
    await new Promise((r) => setTimeout(r, 1500));
    const j = await c.getMassAction({ jobId: job.job!.jobId }, as("p1"));
    console.log("job", j.job?.state, j.job?.done, j.job?.total);
    console.log((await c.getContact({ contact: { ref: { case: "contactId", value: id } } }, as("p1"))).contact?.tags);
    console.log(await c.getUnreadTotals({}, as("p1")), await c.countTabs({}, as("p1", "op1")));
    await c.deleteContact({ contact: { ref: { case: "contactId", value: id } } }, as("p1"));
    await c.getContact({ contact: { ref: { case: "contactId", value: id } } }, as("p1")).catch((e) => console.log("after delete", e.message));
  } finally {
    c.close();
    await svc.stop();
  }
}, 60000);
