import { create } from "@bufbuild/protobuf";
import { ContactRefSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import type { FunnelMoved, FunnelMovedSchema } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import { RpcError, Status } from "@chatcrm/grpc";
import { forEachLimited, groupInOrder, type ConsumedEvent } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { recordFunnelMoves } from "./contact-commands";
import type { ContactWriter } from "./contact-writer";

/** Cards written at once per batch: enough to overlap the database's round trips, few enough not to swamp it. */
const CARDS_AT_ONCE = 8;

/**
 * The flow runtime's funnel moves (flows.funnel-moves.v1), written onto the cards a batch at a time: one
 * compare-and-set per card however many moves the batch holds for it, so a card's position keeps up with a busy
 * bot without a write per message. A move for a card that is gone, or one the card refuses, is dropped.
 */
export function funnelMovesHandler(writer: ContactWriter, logger: Logger) {
  return async (events: ConsumedEvent<typeof FunnelMovedSchema>[]) => {
    const byCard = groupInOrder(
      events.map((e) => e.value).filter((m) => m.projectId && m.contactId),
      (m) => `${m.projectId}\n${m.contactId}`,
    );
    await forEachLimited(byCard.values(), CARDS_AT_ONCE, (moves) => record(writer, logger, moves));
  };
}

async function record(writer: ContactWriter, logger: Logger, moves: FunnelMoved[]): Promise<void> {
  const { projectId, contactId } = moves[0]!;
  const ref = create(ContactRefSchema, { ref: { case: "contactId", value: contactId } });
  try {
    await writer.mutate(projectId, ref, "flow", recordFunnelMoves(moves.map((m) => ({ flowId: m.flowId, blockId: m.blockId, at: new Date(Number(m.movedAtMs)) }))));
  } catch (err) {
    if (!(err instanceof RpcError) || (err.code !== Status.NOT_FOUND && err.code !== Status.INVALID_ARGUMENT)) throw err;
    logger.debug({ projectId, contactId, moves: moves.length, reason: err.message }, "funnel moves dropped");
  }
}
