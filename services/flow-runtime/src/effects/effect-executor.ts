import { fromBinary } from "@bufbuild/protobuf";
import { SendMessageCommandSchema } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { PROJECT_METADATA_KEY, RpcError, Status, type GrpcClient } from "@chatcrm/grpc";
import { Topics, type EventPublisher } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { sendKey, type ContactsMethod } from "../engine/effects";
import type { EffectRecord } from "../sessions/state-store";
import type { TimerWheel } from "../timers/timer-wheel";
import type { SalesPlans } from "./sales-plans";

/** Effects that are records on Kafka topics. */
const PUBLISHED = new Set<EffectRecord["kind"]>(["send", "integration", "funnel"]);

/** Answers that mean "this call can never succeed": the effect is reported and skipped, not retried for ever. */
const PERMANENT = new Set([Status.INVALID_ARGUMENT, Status.NOT_FOUND, Status.FAILED_PRECONDITION, Status.PERMISSION_DENIED]);

/**
 * Executes a step's effects in order (actions before messages, as the step put them). Every effect is idempotent
 * (commands carry ids derived from the event; contacts commands set, add or remove), so a redo after a crash
 * repeats nothing a subscriber would notice. A failure that may pass (a service or Kafka away) throws, and the
 * whole event is retried with the effects still stored.
 */
export class EffectExecutor {
  constructor(
    private readonly contacts: GrpcClient<typeof ContactsService>,
    private readonly publisher: EventPublisher,
    private readonly timers: TimerWheel,
    private readonly salesPlans: SalesPlans,
    private readonly logger: Logger,
  ) {}

  async execute(projectId: string, contactId: string, effects: EffectRecord[]): Promise<void> {
    // Consecutive records for Kafka go out together (each topic's queue keeps their order); anything else waits
    // for what came before it, so an action still lands before the message after it.
    let published: Promise<void>[] = [];
    for (const effect of effects) {
      if (PUBLISHED.has(effect.kind)) {
        published.push(this.one(projectId, contactId, effect));
        continue;
      }
      await Promise.all(published);
      published = [];
      try {
        await this.one(projectId, contactId, effect);
      } catch (err) {
        if (err instanceof RpcError && PERMANENT.has(err.code)) {
          this.logger.warn({ projectId, contactId, effect: effect.method ?? effect.kind, err: err.message }, "a flow action was refused by the contacts service; skipped");
          continue;
        }
        throw err;
      }
    }
    await Promise.all(published);
  }

  private async one(projectId: string, contactId: string, effect: EffectRecord): Promise<void> {
    const options = { metadata: { [PROJECT_METADATA_KEY]: projectId } };
    switch (effect.kind) {
      case "send": {
        // The command id is the effect id (sendEffect); revisions stored before the key was kept are decoded for it.
        const key = effect.key ?? keyOf(fromBinary(SendMessageCommandSchema, effect.payload!));
        await this.publisher.publishCoalesced(Topics.sendCommands, { key, projectId, eventId: effect.id, value: effect.payload! });
        return;
      }
      case "integration":
        // The request id is the effect id (integrationEffect).
        await this.publisher.publishCoalesced(Topics.integrationRequests, { key: contactId, projectId, eventId: effect.id, value: effect.payload! });
        return;
      case "funnel":
        await this.publisher.publishCoalesced(Topics.funnelMoves, {
          key: contactId,
          projectId,
          eventId: effect.id,
          value: { moveId: effect.id, projectId, contactId, flowId: effect.flowId!, blockId: effect.blockId!, movedAtMs: BigInt(effect.atMs!) },
        });
        return;
      case "timer":
        return this.timers.schedule({ _id: effect.id, projectId, contactId, sessionId: effect.sessionId!, purpose: effect.purpose!, dueAtMs: effect.dueAtMs! });
      case "salesPlan":
        return this.salesPlans.add(projectId, effect.plan!, contactId);
      case "contacts": {
        if (effect.method === "markUnread") {
          const { contact } = await this.contacts.getContact({ contact: { ref: { case: "contactId", value: contactId } } }, options);
          // Only a chat the subscriber wrote in has a last message of theirs to mark (seed 003).
          if (contact?.clientWrote) await this.contacts.setRead({ contact: { ref: { case: "contactId", value: contactId } }, read: false }, options);
          return;
        }
        const method = effect.method as ContactsMethod;
        const request = fromBinary(ContactsService.method[method].input, effect.payload!);
        await (this.contacts[method] as (r: unknown, o: unknown) => Promise<unknown>)(request, options);
        return;
      }
    }
  }
}

const keyOf = (command: { channelId: string; recipientId: string }) => sendKey(command.channelId, command.recipientId);
