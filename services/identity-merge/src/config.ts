import { serviceBaseSchema } from "@chatcrm/config";

/** Environment of the identity-merge service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50054, database: "chatcrm_identity_merge" });

export type Config = ReturnType<typeof configSchema.parse>;
