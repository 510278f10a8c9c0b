import escapeRegExp from "escape-string-regexp";
import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactStatus, ContactTab, type ContactFilter } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument, type Viewer } from "@chatcrm/grpc";
import { checkTimeZone, startOfDay } from "../domain/day-boundaries";
import { messengerName, statusName } from "../domain/enums";
import { checkNames, checkText, checkVariableName, Limits } from "../domain/limits";
import { variablePair, VARIABLE_PAIR_SEPARATOR, type ContactQuery } from "../store/contact-document";

type Query = ContactQuery;

/** Case-insensitive literal substring: user text is escaped, so it never becomes a pattern or an operator. */
const contains = (text: string) => ({ $regex: escapeRegExp(text), $options: "i" });

/**
 * Translates a filter and a tab into a MongoDB query (without the project, which the caller adds last). Every
 * value is validated and used only as a value; a filter that can match nothing by construction (an empty date
 * range) is refused rather than answered with an empty page.
 */
export function contactQuery(filter: ContactFilter | undefined, tab: ContactTab, viewer: Viewer, field = "filter"): Query {
  const and: Query[] = [];
  if (filter) and.push(...filterConditions(filter, field));
  and.push(...tabConditions(tab, viewer));
  return and.length ? { $and: and } : {};
}

function filterConditions(f: ContactFilter, field: string): Query[] {
  const and: Query[] = [];
  const at = (name: string) => `${field}.${name}`;
  // A client built against a newer contract may send a filter this service cannot apply; ignoring it would
  // silently widen the selection (and a mass action on it), so it is refused.
  const unknown = [...(f.$unknown ?? []), ...(f.utm?.$unknown ?? [])];
  if (unknown.length) throw invalidArgument(field, `has field number ${unknown.map((u) => u.no).join(", ")}, which this service does not know`);

  const search = checkText(at("search"), f.search.trim());
  if (search) {
    const re = contains(search);
    and.push({ $or: [{ firstName: re }, { lastName: re }, { displayName: re }, { username: re }, { messengerUserId: re }] });
  }
  const clientId = f.clientIdContains.trim();
  if (clientId) {
    if (!/^\d{1,18}$/.test(clientId)) throw invalidArgument(at("client_id_contains"), `"${clientId.slice(0, 40)}" is not a number; client ids are digits`);
    and.push({ clientIdText: { $regex: clientId } });
  }
  const firstName = checkText(at("first_name"), f.firstName.trim());
  if (firstName) and.push({ firstName: contains(firstName) });
  const lastName = checkText(at("last_name"), f.lastName.trim());
  if (lastName) and.push({ lastName: contains(lastName) });

  const blocks = checkNames(at("funnel_block_ids"), f.funnelBlockIds);
  if (blocks.length) and.push({ funnelBlockId: { $in: blocks } });
  const lists = checkNames(at("lists"), f.lists);
  if (lists.length) and.push({ lists: { $in: lists } });
  const excludeLists = checkNames(at("exclude_lists"), f.excludeLists);
  if (excludeLists.length) and.push({ lists: { $nin: excludeLists } });
  const tags = checkNames(at("tags"), f.tags);
  if (tags.length) and.push({ tags: f.tagsMatchAll ? { $all: tags } : { $in: tags } });
  else if (f.tagsMatchAll) throw invalidArgument(at("tags_match_all"), "is set but no tags are given");
  const excludeTags = checkNames(at("exclude_tags"), f.excludeTags);
  if (excludeTags.length) and.push({ tags: { $nin: excludeTags } });
  const channels = checkNames(at("channel_ids"), f.channelIds);
  if (channels.length) and.push({ channelId: { $in: channels } });
  if (f.messengers.length) {
    const names = f.messengers.map((m, i) => messengerName(m) ?? fail(at(`messengers[${i}]`), `${m} is not a known messenger (${knownValues(Messenger)})`));
    and.push({ messenger: { $in: names } });
  }

  const zone = checkTimeZone(at("time_zone"), f.timeZone.trim());
  const before = f.registeredBefore.trim() ? startOfDay(at("registered_before"), f.registeredBefore.trim(), zone) : undefined;
  const after = f.registeredAfter.trim() ? startOfDay(at("registered_after"), f.registeredAfter.trim(), zone) : undefined;
  if (before && after && after >= before)
    throw invalidArgument(at("registered_after"), `registered after ${f.registeredAfter} and before ${f.registeredBefore} is an empty range; "after" must be an earlier day than "before"`);
  if (before || after) and.push({ createdAt: { ...(after && { $gte: after }), ...(before && { $lt: before }) } });

  if (f.unansweredOnly) and.push({ unread: true });
  const stages = checkNames(at("deal_stages"), f.dealStages);
  if (stages.length) and.push({ dealStage: { $in: stages } });
  const operators = checkNames(at("operator_ids"), f.operatorIds);
  if (operators.length) and.push({ operatorId: { $in: operators } });

  const varName = checkVariableName(at("variable_name"), f.variableName.trim());
  const varValue = checkText(at("variable_value"), f.variableValue, Limits.variableValue);
  if (varName && varValue) and.push({ varPairs: variablePair(varName, varValue) });
  else if (varName) and.push({ varNames: varName });
  // Names hold no separator, so the first one ends the name; \z (not $) so a trailing newline cannot match.
  else if (varValue) and.push({ varPairs: { $regex: `^[^${VARIABLE_PAIR_SEPARATOR}]*${VARIABLE_PAIR_SEPARATOR}${escapeRegExp(varValue)}\\z` } });

  if (f.utm) {
    for (const key of ["source", "medium", "campaign", "content", "term"] as const) {
      const value = checkText(at(`utm.${key}`), f.utm[key].trim());
      if (value) and.push({ [`firstUtm.${key}`]: value });
    }
  }
  if (f.statuses.length) {
    const names = f.statuses.map((s, i) => statusName(s) ?? fail(at(`statuses[${i}]`), `${s} is not a status a stored contact can have (${knownValues(ContactStatus, [ContactStatus.BLACKLISTED])})`));
    and.push({ status: { $in: names } });
  }
  return and;
}

function tabConditions(tab: ContactTab, viewer: Viewer): Query[] {
  switch (tab) {
    case ContactTab.UNSPECIFIED:
    case ContactTab.ALL:
      return [];
    case ContactTab.UNANSWERED:
      return [{ unread: true }];
    case ContactTab.MINE:
      return [{ operatorId: operatorOf(viewer) }];
    case ContactTab.OTHERS:
      // Seen by someone who is not an operator (an admin account, a backend), every assigned client is another's.
      return [{ operatorId: { $nin: ["", viewer.operatorId] } }];
    case ContactTab.FREE:
      return [{ operatorId: "" }];
    default:
      throw invalidArgument("tab", `${tab as number} is not a tab (${knownValues(ContactTab)})`);
  }
}

function operatorOf(viewer: Viewer): string {
  if (!viewer.operatorId) throw invalidArgument("tab", "the Mine tab is relative to an operator, and the call names none");
  return viewer.operatorId;
}

function fail(field: string, problem: string): never {
  throw invalidArgument(field, problem);
}

/** "1 = TELEGRAM, 2 = WHATSAPP…" for an error message. */
function knownValues(enumObject: object, except: number[] = []): string {
  return Object.entries(enumObject)
    .filter(([k, v]) => typeof v === "number" && v !== 0 && !except.includes(v) && Number.isNaN(Number(k)))
    .map(([k, v]) => `${v} = ${k}`)
    .join(", ");
}
