import type { DescMethod } from "@bufbuild/protobuf";
import type { ContactRef } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import type { Audience } from "./caller";

type ContactOf = (request: never) => Pick<ContactRef, "ref"> | undefined;

/**
 * Who may call a method. Operators act only on their own and free clients (seed 002) where `contact` names the
 * client the call acts on; reads stay open to them, as the Others' tab is. API keys act for the whole project
 * but cannot manage people or keys, so a leaked key cannot mint more access.
 */
export interface Rule {
  /** Anyone may call it, without credentials. */
  public?: true;
  allow: ReadonlySet<Audience>;
  contact?: ContactOf;
  /** The request names a channel the backend takes on trust: it must be one of the caller's project. */
  channel?: (request: never) => string;
  /** The request names an operator as its author: a person may only write as themselves (empty means the caller). */
  author?: { read: (request: never) => string; write: (request: never, operatorId: string) => void };
}

const everyone = new Set<Audience>(["admin", "operator", "api-key"]);
const managers = new Set<Audience>(["admin", "api-key"]);
const people = new Set<Audience>(["admin", "operator"]);
const admins = new Set<Audience>(["admin"]);

const open: Rule = { public: true, allow: everyone };
const read: Rule = { allow: everyone };
const manage: Rule = { allow: managers };
const byContactRef: Rule = { allow: everyone, contact: (r: { contact?: ContactRef }) => r.contact };
const byContactId: Rule = { allow: everyone, contact: (r: { contactId: string }) => ({ ref: { case: "contactId", value: r.contactId } }) };

/** Every method the public API serves, by "<package>.<Service>/<Method>". A method missing here is refused. */
export const POLICY: Readonly<Record<string, Rule>> = {
  "chatcrm.system.v1.SystemService/GetSystemStatus": open,

  "chatcrm.gateway.v1.AuthService/Login": open,
  "chatcrm.gateway.v1.AuthService/RefreshSession": open,
  "chatcrm.gateway.v1.AuthService/Logout": { allow: people },
  "chatcrm.gateway.v1.AuthService/GetCurrentIdentity": read,

  "chatcrm.gateway.v1.AccessService/CreateOperator": { allow: admins },
  "chatcrm.gateway.v1.AccessService/ListOperators": { allow: admins },
  "chatcrm.gateway.v1.AccessService/UpdateOperator": { allow: admins },
  "chatcrm.gateway.v1.AccessService/CreateApiKey": { allow: admins },
  "chatcrm.gateway.v1.AccessService/ListApiKeys": { allow: admins },
  "chatcrm.gateway.v1.AccessService/RevokeApiKey": { allow: admins },

  "chatcrm.gateway.v1.ConversationsService/SendToContact": byContactRef,
  "chatcrm.gateway.v1.ConversationsService/ListContactMessages": read,

  "chatcrm.gateway.v1.LiveService/StreamUpdates": read,

  "chatcrm.contacts.v1.ContactsService/GetContact": read,
  "chatcrm.contacts.v1.ContactsService/ListContacts": read,
  "chatcrm.contacts.v1.ContactsService/CountTabs": read,
  "chatcrm.contacts.v1.ContactsService/GetUnreadTotals": read,
  // The whole filtered base in one stream is an export: not an operator's tool.
  "chatcrm.contacts.v1.ContactsService/StreamContacts": manage,
  "chatcrm.contacts.v1.ContactsService/ListTimeline": read,
  "chatcrm.contacts.v1.ContactsService/SetVariables": byContactRef,
  "chatcrm.contacts.v1.ContactsService/SetAnswer": byContactRef,
  "chatcrm.contacts.v1.ContactsService/ModifyTags": byContactRef,
  "chatcrm.contacts.v1.ContactsService/ModifyLists": byContactRef,
  "chatcrm.contacts.v1.ContactsService/SetStatus": byContactRef,
  "chatcrm.contacts.v1.ContactsService/SetFunnelPosition": byContactRef,
  "chatcrm.contacts.v1.ContactsService/SetDealStage": byContactRef,
  "chatcrm.contacts.v1.ContactsService/SetRead": byContactRef,
  "chatcrm.contacts.v1.ContactsService/AssignOperator": byContactRef,
  "chatcrm.contacts.v1.ContactsService/SetPinned": byContactRef,
  "chatcrm.contacts.v1.ContactsService/AddComment": {
    ...byContactRef,
    author: { read: (r: { authorOperatorId: string }) => r.authorOperatorId, write: (r: { authorOperatorId: string }, id: string) => (r.authorOperatorId = id) },
  },
  // Irreversible (seed 002): admins only.
  "chatcrm.contacts.v1.ContactsService/DeleteContact": manage,
  "chatcrm.contacts.v1.ContactsService/CreateSavedFilter": manage,
  "chatcrm.contacts.v1.ContactsService/ListSavedFilters": read,
  "chatcrm.contacts.v1.ContactsService/DeleteSavedFilter": manage,
  "chatcrm.contacts.v1.ContactsService/StartMassAction": manage,
  "chatcrm.contacts.v1.ContactsService/GetMassAction": manage,
  "chatcrm.contacts.v1.ContactsService/ListMassActions": manage,
  "chatcrm.contacts.v1.ContactsService/ImportSubscribers": { ...manage, channel: (r: { channelId: string }) => r.channelId },

  "chatcrm.channels.v1.ChannelsService/ConnectChannel": manage,
  "chatcrm.channels.v1.ChannelsService/DisconnectChannel": manage,
  "chatcrm.channels.v1.ChannelsService/GetChannel": read,
  "chatcrm.channels.v1.ChannelsService/ListChannels": read,
  // A raw send goes to whatever recipient id it names, so no card can vouch for it: operators write to their
  // clients through ConversationsService.SendToContact, which takes the recipient from the card.
  "chatcrm.channels.v1.ChannelsService/SendMessage": manage,
  // Any chat by its peer id, with no card to check the client against: operators use ListContactMessages.
  "chatcrm.channels.v1.ChannelsService/ListMessages": manage,
  "chatcrm.channels.v1.ChannelsService/StartResendFailed": manage,
  "chatcrm.channels.v1.ChannelsService/GetResendJob": manage,
  "chatcrm.channels.v1.ChannelsService/ListResendJobs": manage,

  "chatcrm.flows.v1.FlowsService/CreateFlow": manage,
  "chatcrm.flows.v1.FlowsService/UpdateFlow": manage,
  "chatcrm.flows.v1.FlowsService/GetFlow": read,
  "chatcrm.flows.v1.FlowsService/ListFlows": read,
  "chatcrm.flows.v1.FlowsService/ValidateFlow": read,
  "chatcrm.flows.v1.FlowsService/ArchiveFlow": manage,
  "chatcrm.flows.v1.FlowsService/StartFlow": byContactId,
  "chatcrm.flows.v1.FlowsService/StopFlow": byContactId,
  "chatcrm.flows.v1.FlowsService/ListSessions": read,
  "chatcrm.flows.v1.FlowsService/GetSalesPlan": read,
};

export const methodKey = (method: DescMethod) => `${method.parent.typeName}/${method.name}`;

export const ruleFor = (method: DescMethod): Rule | undefined => POLICY[methodKey(method)];
