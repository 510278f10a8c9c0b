import { isDuplicateKey } from "@chatcrm/mongo";
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import { ContactFilterSchema, ContactTab, type ContactFilter } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument, notFound, RpcError, Status } from "@chatcrm/grpc";
import { checkText } from "../domain/limits";
import { contactQuery } from "../filters/contact-query";
import type { SavedFilterDoc, SupportModels } from "../store/support-models";

const MAX_PER_PROJECT = 200;

const toProto = (d: SavedFilterDoc) => ({ filterId: d._id, name: d.name, filter: fromJson(ContactFilterSchema, d.filter as JsonValue), createdAt: timestampFromDate(d.createdAt) });

/** Named filters per project (seed 002 "saved filters"); a filter is validated as a list request would be. */
export async function createSavedFilter(support: SupportModels, projectId: string, name: string, filter: ContactFilter | undefined) {
  const trimmed = checkText("name", name.trim(), 100);
  if (!trimmed) throw invalidArgument("name", "is empty");
  if (!filter) throw invalidArgument("filter", "is missing");
  contactQuery(filter, ContactTab.ALL, { role: "admin", operatorId: "" });
  if ((await support.savedFilters.collection.countDocuments({ projectId })) >= MAX_PER_PROJECT) throw new RpcError(Status.RESOURCE_EXHAUSTED, `a project keeps at most ${MAX_PER_PROJECT} saved filters`);
  const doc: SavedFilterDoc = { _id: randomUUID(), projectId, name: trimmed, filter: toJson(ContactFilterSchema, filter), createdAt: new Date() };
  try {
    await support.savedFilters.collection.insertOne(doc as never);
  } catch (err) {
    if (isDuplicateKey(err)) throw new RpcError(Status.ALREADY_EXISTS, `a saved filter named "${trimmed}" already exists`);
    throw err;
  }
  return toProto(doc);
}

export async function listSavedFilters(support: SupportModels, projectId: string) {
  const docs = (await support.savedFilters.collection.find({ projectId }).sort({ name: 1 }).toArray()) as unknown as SavedFilterDoc[];
  return docs.map(toProto);
}

export async function deleteSavedFilter(support: SupportModels, projectId: string, filterId: string) {
  if (!filterId.trim()) throw invalidArgument("filter_id", "is empty");
  const res = await support.savedFilters.collection.deleteOne({ _id: filterId.trim() as never, projectId });
  if (res.deletedCount !== 1) throw notFound("saved filter");
}
