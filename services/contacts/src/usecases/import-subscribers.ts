import type { ImportSubscribersRequest } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument } from "@chatcrm/grpc";
import { normalizeMessengerId } from "@chatcrm/messenger-ids";
import type { EventPublisher } from "@chatcrm/kafka";
import { messengerName } from "../domain/enums";
import { checkText, Limits } from "../domain/limits";
import { contactChanged, publishContactEvents } from "../events/contact-events";
import type { ContactStore } from "./contact-store";
import { contactForIdentity } from "./new-contact";

/**
 * Seed 001 import: ids separated by commas or new lines go into one channel, optionally straight into a list.
 * Ids already in the channel, or repeated in the text, are skipped; invalid ones come back with their line. A
 * retried import creates nothing twice (contact ids are derived from the channel identity).
 */
export async function importSubscribers(store: ContactStore, publisher: EventPublisher, projectId: string, actor: string, req: ImportSubscribersRequest) {
  const channelId = checkText("channel_id", req.channelId.trim());
  if (!channelId) throw invalidArgument("channel_id", "choose the channel to import into");
  const messenger = messengerName(req.messenger);
  if (!messenger) throw invalidArgument("messenger", "choose the channel's messenger");
  const list = checkText("list", req.list.trim());
  if (req.subscriberIds.length > Limits.importIds * 40) throw invalidArgument("subscriber_ids", `is too long; import at most ${Limits.importIds} ids at a time`);

  const invalid: { line: number; value: string; problem: string }[] = [];
  const wanted = new Map<string, number>();
  let skipped = 0;
  req.subscriberIds.split(/\r?\n/).forEach((text, index) => {
    for (const part of text.split(",")) {
      const raw = part.trim();
      if (!raw) continue;
      const id = normalizeMessengerId(req.messenger, raw);
      if (typeof id !== "string") invalid.push({ line: index + 1, value: raw.slice(0, 100), problem: id.problem });
      else if (wanted.has(id)) skipped++;
      else wanted.set(id, index + 1);
    }
  });
  if (wanted.size > Limits.importIds) throw invalidArgument("subscriber_ids", `has ${wanted.size} ids; import at most ${Limits.importIds} at a time`);
  if (wanted.size === 0 && invalid.length === 0) throw invalidArgument("subscriber_ids", "holds no ids; separate them with commas or new lines");

  const now = new Date();
  const created = [];
  for (const [messengerUserId, line] of wanted) {
    const result = await contactForIdentity(store, { projectId, messenger, channelId, messengerUserId, at: now, lists: list ? [list] : [], cause: "import", actor });
    if (result.kind === "blacklisted") {
      invalid.push({ line, value: messengerUserId, problem: "the subscriber was deleted and blacklisted" });
      continue;
    }
    if (result.kind !== "created") {
      skipped++;
      continue;
    }
    created.push(result.contact);
  }
  for (let i = 0; i < created.length; i += 500)
    await publishContactEvents(publisher, created.slice(i, i + 500).map((c) => contactChanged(c, "created", `created:${c._id}`, [], now)));
  return { imported: created.length, skippedDuplicates: skipped, invalid };
}
