import { create } from "@bufbuild/protobuf";
import { ContactRefSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import type { FunnelMoved, FunnelMovedSchema } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import { RpcError, Status } from "@chatcrm/grpc";
import { forEachLimited, groupInOrder, type ConsumedEvent } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { recordFunnelMoves } from "./contact-commands";
import type { ContactDoc } from "../store/contact-document";
import type { ContactStore } from "./contact-store";
import type { ContactWriter } from "./contact-writer";

/** Cards written at once per batch: enough to overlap the database's round trips, few enough not to swamp it. */
const CARDS_AT_ONCE = 8;

/**
 * The flow runtime's funnel moves (flows.funnel-moves.v1), written onto the cards a batch at a time: one read for
 * the batch's cards and one compare-and-set per card however many moves the batch holds for it, so a card's
 * position keeps up with a busy bot without a read and a write per message. A move for a card that is gone, or
 * one the card refuses, is dropped.
 */
export function funnelMovesHandler(store: ContactStore, writer: ContactWriter, logger: Logger) {
  return async (events: ConsumedEvent<typeof FunnelMovedSchema>[]) => {
    const moves = events.map((e) => e.value).filter((m) => m.projectId && m.contactId);
    for (const [projectId, ofProject] of groupInOrder(moves, (m) => m.projectId)) {
      const byCard = groupInOrder(ofProject, (m) => m.contactId);
      // One read for the batch's cards; a move for a card that is not there (deleted, or never made) is dropped.
      const cards = await store.byIds(projectId, [...byCard.keys()]);
      const dropped = [...byCard.keys()].filter((id) => !cards.has(id));
      if (dropped.length > 0) logger.debug({ projectId, cards: dropped.length }, "funnel moves for cards that do not exist dropped");
      await forEachLimited(
        [...byCard].filter(([id]) => cards.has(id)),
        CARDS_AT_ONCE,
        ([id, cardMoves]) => record(writer, logger, cards.get(id)!, cardMoves),
      );
    }
  };
}

async function record(writer: ContactWriter, logger: Logger, card: ContactDoc, moves: FunnelMoved[]): Promise<void> {
  const ref = create(ContactRefSchema, { ref: { case: "contactId", value: card._id } });
  try {
    await writer.mutate(card.projectId, ref, "flow", recordFunnelMoves(moves.map((m) => ({ flowId: m.flowId, blockId: m.blockId, at: new Date(Number(m.movedAtMs)) }))), card);
  } catch (err) {
    if (!(err instanceof RpcError) || (err.code !== Status.NOT_FOUND && err.code !== Status.INVALID_ARGUMENT)) throw err;
    logger.debug({ projectId: card.projectId, contactId: card._id, moves: moves.length, reason: err.message }, "funnel moves dropped");
  }
}
