import type { ContactSnapshot } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";

/** Subscriber fields a template or a condition may name; any other name is a variable. */
export const SUBSCRIBER_FIELDS = ["first_name", "last_name", "phone", "email", "username", "client_id", "free_text", "language"] as const;
type SubscriberField = (typeof SUBSCRIBER_FIELDS)[number];
const FIELD_SET = new Set<string>(SUBSCRIBER_FIELDS);

/** What a template reads: the card's fields and variables (a flow step's own changes already applied). */
export type TemplateData = Pick<ContactSnapshot, "firstName" | "lastName" | "phone" | "email" | "username" | "clientId" | "freeText" | "language" | "variables">;

// {{ name }} or {{ name | fallback }}; a name is anything but braces and "|", so variables with spaces work.
const PLACEHOLDER = /\{\{\s*([^{}|]+?)\s*(?:\|([^{}]*))?\}\}/g;

export interface Placeholder {
  name: string;
  fallback: string | undefined;
}

/** The placeholders a template names, in order. */
export function placeholders(template: string): Placeholder[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => ({ name: m[1]!, fallback: m[2]?.trim() }));
}

/** Problems with a template's syntax or names, for flow validation. */
export function templateProblems(template: string): string[] {
  const problems: string[] = [];
  const rest = template.replace(PLACEHOLDER, "");
  if (rest.includes("{{") || rest.includes("}}")) problems.push("has an unclosed or malformed {{…}} placeholder");
  for (const p of placeholders(template)) {
    if (p.name.startsWith("client.") && !FIELD_SET.has(p.name.slice("client.".length))) {
      problems.push(`names the unknown subscriber field "${p.name.slice("client.".length)}" (known: ${SUBSCRIBER_FIELDS.join(", ")})`);
    }
  }
  return problems;
}

/** A subscriber field's value as text; empty when missing. */
export function fieldValue(data: TemplateData, field: string): string | undefined {
  const values: Record<SubscriberField, string> = {
    first_name: data.firstName,
    last_name: data.lastName,
    phone: data.phone,
    email: data.email,
    username: data.username,
    client_id: data.clientId ? String(data.clientId) : "",
    free_text: data.freeText,
    language: data.language,
  };
  return FIELD_SET.has(field) ? values[field as SubscriberField] : undefined;
}

/** The value a placeholder name stands for: a field by its name or as client.<field>, else a variable. */
export function lookup(data: TemplateData, name: string): string {
  const field = name.startsWith("client.") ? name.slice("client.".length) : name;
  const asField = fieldValue(data, field);
  if (asField !== undefined) return asField;
  return data.variables[name] ?? "";
}

/**
 * Fills a template. A missing or empty value takes the placeholder's fallback, or becomes empty: the subscriber
 * never sees a raw {{…}}. `encode` escapes substituted values (URLs).
 */
export function render(template: string, data: TemplateData, encode?: (value: string) => string): string {
  return template.replace(PLACEHOLDER, (_all, name: string, fallback: string | undefined) => {
    const value = lookup(data, name) || fallback?.trim() || "";
    return encode ? encode(value) : value;
  });
}
