import type { WidgetReply } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { WebSocket } from "ws";

/** The frames this service sends to a widget, as JSON. */
export type WidgetFrame =
  | { type: "hello"; visitor_id: string; token: string }
  | { type: "accepted"; client_message_id: string; message_id: string }
  | { type: "message"; id: string; text: string; attachments: { kind: string; url: string; file_name: string }[]; buttons: { text: string; payload: string; url: string }[]; at: string }
  | { type: "error"; error: string }
  | { type: "pong" };

export function replyFrame(reply: WidgetReply): WidgetFrame {
  return {
    type: "message",
    id: reply.messageId,
    text: reply.text,
    attachments: reply.attachments.map((a) => ({ kind: MessageKind[a.kind]?.toLowerCase() ?? "document", url: a.url, file_name: a.fileName })),
    buttons: reply.buttons.map((b) => ({ text: b.text, payload: b.payload, url: b.url })),
    at: (reply.at ? timestampDate(reply.at) : new Date()).toISOString(),
  };
}

/** The widget sockets this replica holds, by visitor; a visitor with several tabs open has several. */
export class WidgetHub {
  private readonly sockets = new Map<string, Set<WebSocket>>();

  add(channelId: string, visitorId: string, socket: WebSocket): void {
    const key = `${channelId}:${visitorId}`;
    let set = this.sockets.get(key);
    if (!set) this.sockets.set(key, (set = new Set()));
    set.add(socket);
    socket.on("close", () => {
      set.delete(socket);
      if (set.size === 0 && this.sockets.get(key) === set) this.sockets.delete(key);
    });
  }

  /** Pushes a reply to the visitor's open sockets on this replica; returns how many got it. */
  deliver(reply: WidgetReply): number {
    const set = this.sockets.get(`${reply.channelId}:${reply.visitorId}`);
    if (!set) return 0;
    const frame = JSON.stringify(replyFrame(reply));
    for (const socket of set) socket.send(frame);
    return set.size;
  }

  closeAll(): void {
    for (const set of this.sockets.values()) for (const socket of set) socket.close(1001, "server shutting down");
    this.sockets.clear();
  }
}
