import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import type { ContactChanged, ContactResolvedMessage } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import type { StreamUpdatesResponseSchema } from "@chatcrm/contracts/chatcrm/gateway/v1/live_service_pb";
import { RpcError, Status, type GrpcClient } from "@chatcrm/grpc";
import type { Logger } from "@chatcrm/logging";
import { backendMetadata, type Caller } from "../access/caller";
import { Subscriber } from "./subscriber";

export type Update = MessageInitShape<typeof StreamUpdatesResponseSchema>;

export interface LiveHubSettings {
  heartbeatMs: number;
  unreadDebounceMs: number;
  timeoutMs: number;
}

/** Admins and keys see the whole project; an operator their own and free clients (seed 002). */
const sees = (caller: Caller, assignedTo: string) => caller.kind === "api-key" || caller.role === "admin" || !assignedTo || assignedTo === caller.operatorId;

/** Callers whose unread counters are the same numbers share one query. */
const unreadScope = (caller: Caller) => (caller.kind === "operator" && caller.role === "operator" ? `op:${caller.operatorId}` : "project");

const unreadKey = (t: { unreadContacts: bigint; unreadMessages: bigint }) => `${t.unreadContacts}/${t.unreadMessages}`;

/**
 * Fans the project's events out to the open update streams of this replica. Every replica reads every event
 * (its own consumer group), so a stream gets its updates whichever replica holds it. Unread counters are asked
 * of contacts once per project and scope after a burst of changes, and pushed only when they moved.
 */
export class LiveHub {
  private readonly byProject = new Map<string, Set<Subscriber>>();
  private readonly unreadTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly contacts: GrpcClient<typeof ContactsService>,
    private readonly settings: LiveHubSettings,
    private readonly logger: Logger,
  ) {}

  get openStreams(): number {
    let n = 0;
    for (const subs of this.byProject.values()) n += subs.size;
    return n;
  }

  async *stream(caller: Caller, signal: AbortSignal): AsyncGenerator<Update> {
    const sub = new Subscriber(caller);
    const subs = this.byProject.get(caller.projectId) ?? new Set();
    this.byProject.set(caller.projectId, subs.add(sub));
    try {
      const totals = await this.unreadOf(caller);
      sub.lastUnread = unreadKey(totals);
      yield { update: { case: "unreadTotals", value: totals } };
      for (;;) {
        const next = await sub.next(signal, this.settings.heartbeatMs);
        if (next === "closed") return;
        if (next === "overflow") throw new RpcError(Status.RESOURCE_EXHAUSTED, "the stream fell too far behind: open it again");
        yield next ?? { update: { case: "heartbeat", value: { at: timestampNow() } } };
      }
    } finally {
      subs.delete(sub);
      if (!subs.size) this.byProject.delete(caller.projectId);
    }
  }

  onMessages(events: ContactResolvedMessage[]): void {
    for (const e of events) {
      const projectId = e.message?.projectId ?? "";
      const update: Update = { update: { case: "newMessage", value: { message: e.message, contact: e.contact, firstTouch: e.firstTouch } } };
      this.publish(projectId, e.contact?.operatorId ?? "", update);
    }
  }

  onContactChanges(events: ContactChanged[]): void {
    for (const e of events) {
      const update: Update = {
        update: { case: "contactUpdate", value: { contactId: e.contactId, kind: e.kind, changedFields: e.changedFields, card: e.card, at: e.at } },
      };
      this.publish(e.projectId, e.card?.operatorId ?? e.contact?.operatorId ?? "", update);
    }
  }

  close(): void {
    for (const timer of this.unreadTimers.values()) clearTimeout(timer);
    for (const subs of this.byProject.values()) for (const sub of subs) sub.close();
  }

  private publish(projectId: string, assignedTo: string, update: Update): void {
    const subs = this.byProject.get(projectId);
    if (!subs) return;
    for (const sub of subs) if (sees(sub.caller, assignedTo)) sub.push(update);
    this.scheduleUnread(projectId);
  }

  private scheduleUnread(projectId: string): void {
    if (this.unreadTimers.has(projectId)) return;
    const timer = setTimeout(() => {
      this.unreadTimers.delete(projectId);
      this.refreshUnread(projectId).catch((err) => this.logger.warn({ err, projectId }, "could not refresh unread counters for live streams"));
    }, this.settings.unreadDebounceMs);
    timer.unref();
    this.unreadTimers.set(projectId, timer);
  }

  private async refreshUnread(projectId: string): Promise<void> {
    const subs = [...(this.byProject.get(projectId) ?? [])];
    const scopes = new Map<string, Subscriber[]>();
    for (const sub of subs) {
      const scope = unreadScope(sub.caller);
      const group = scopes.get(scope);
      if (group) group.push(sub);
      else scopes.set(scope, [sub]);
    }
    await Promise.all(
      [...scopes.values()].map(async (group) => {
        const totals = await this.unreadOf(group[0]!.caller);
        const key = unreadKey(totals);
        for (const sub of group) {
          if (sub.lastUnread === key) continue;
          sub.lastUnread = key;
          sub.push({ update: { case: "unreadTotals", value: totals } });
        }
      }),
    );
  }

  private async unreadOf(caller: Caller) {
    const res = await this.contacts.getUnreadTotals({}, { metadata: backendMetadata(caller), timeoutMs: this.settings.timeoutMs });
    return { unreadContacts: res.unreadContacts, unreadMessages: res.unreadMessages };
  }
}
