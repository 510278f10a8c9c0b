export { MongoDatabase, type IndexedModel, type MongoSettings } from "./mongo-database";
export { MongoProcessedEventStore, type ProcessedEventStoreOptions } from "./processed-event-store";
export { scopeToProject, TenantCollection, type TenantDocument } from "./tenant-collection";
export { BULK_WRITE_SLICE, bulkWriteInSlices } from "./bulk-write";
export { insertManyIgnoringDuplicates, isDuplicateKey, onlyDuplicateKeys } from "./duplicates";
export { LeasedJobRunner, type LeasedJob, type LeasedJobOptions } from "./leased-jobs";
export { storedBytes } from "./stored-bytes";
