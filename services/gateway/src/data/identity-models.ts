import { Schema, type Connection } from "mongoose";

export type RoleName = "admin" | "operator";

export interface ProjectDoc {
  _id: string;
  name: string;
  createdAt: Date;
}

/** A person in one project. The same email may be an operator in several projects, one document each. */
export interface OperatorDoc {
  _id: string;
  projectId: string;
  /** Lower-cased; unique within the project. */
  email: string;
  name: string;
  role: RoleName;
  passwordHash: string;
  disabled: boolean;
  createdAt: Date;
}

/** A signed-in operator's session: the refresh token's hash, rotated on every refresh. */
export interface SessionDoc {
  _id: string;
  projectId: string;
  operatorId: string;
  refreshHash: string;
  /** The hash of the refresh token this one replaced: presenting it again means the token was copied. */
  previousRefreshHash: string;
  refreshExpiresAt: Date;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface ApiKeyDoc {
  _id: string;
  projectId: string;
  name: string;
  prefix: string;
  secretHash: string;
  createdBy: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** Wrong passwords for one email, across replicas and restarts: what lockout counts. _id is the email. */
export interface LoginFailureDoc {
  _id: string;
  count: number;
  firstAt: Date;
  lockedUntil: Date | null;
}

export function identityModels(connection: Connection) {
  const projects = new Schema<ProjectDoc>({ _id: String, name: String, createdAt: Date }, { versionKey: false });

  const operators = new Schema<OperatorDoc>(
    { _id: String, projectId: { type: String, required: true }, email: String, name: String, role: String, passwordHash: String, disabled: Boolean, createdAt: Date },
    { versionKey: false },
  );
  // Login: an email's accounts across projects; uniqueness of an email within a project.
  operators.index({ email: 1, projectId: 1 }, { unique: true });
  // ListOperators: a project's operators in the order they were added.
  operators.index({ projectId: 1, createdAt: 1 });

  const sessions = new Schema<SessionDoc>(
    {
      _id: String,
      projectId: { type: String, required: true },
      operatorId: String,
      refreshHash: String,
      previousRefreshHash: String,
      refreshExpiresAt: Date,
      createdAt: Date,
      revokedAt: { type: Date, default: null },
    },
    { versionKey: false },
  );
  // The revocation poll: sessions revoked since the last pass.
  sessions.index({ revokedAt: 1 });
  // Revoking every session of an operator (disabled, new role or password).
  sessions.index({ projectId: 1, operatorId: 1 });

  const apiKeys = new Schema<ApiKeyDoc>(
    { _id: String, projectId: { type: String, required: true }, name: String, prefix: String, secretHash: String, createdBy: String, createdAt: Date, revokedAt: { type: Date, default: null } },
    { versionKey: false },
  );
  // ListApiKeys: a project's keys, newest first.
  apiKeys.index({ projectId: 1, createdAt: -1 });
  // The revocation poll: keys revoked since the last pass.
  apiKeys.index({ revokedAt: 1 });

  const loginFailures = new Schema<LoginFailureDoc>({ _id: String, count: Number, firstAt: Date, lockedUntil: Date }, { versionKey: false });

  return {
    projects: connection.model<ProjectDoc>("Project", projects, "projects"),
    operators: connection.model<OperatorDoc>("Operator", operators, "operators"),
    sessions: connection.model<SessionDoc>("Session", sessions, "sessions"),
    apiKeys: connection.model<ApiKeyDoc>("ApiKey", apiKeys, "api_keys"),
    loginFailures: connection.model<LoginFailureDoc>("LoginFailure", loginFailures, "login_failures"),
  };
}

export type IdentityModels = ReturnType<typeof identityModels>;
