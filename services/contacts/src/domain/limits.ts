import { invalidArgument } from "@chatcrm/grpc";

/** Sizes past which input is refused rather than stored or queried. */
export const Limits = {
  text: 200,
  variableName: 100,
  variableValue: 4_000,
  variablesPerContact: 500,
  comment: 4_000,
  /** A last message's preview: the first characters of its text. */
  excerpt: 200,
  /** Comment ids remembered on a card, so a repeated AddComment adds its comment once. */
  recentComments: 50,
  valuesPerField: 100,
  funnelHistory: 500,
  explicitSelection: 10_000,
  importIds: 100_000,
} as const;

export function checkText(field: string, value: string, max: number = Limits.text): string {
  if (value.length > max) throw invalidArgument(field, `is ${value.length} characters long; at most ${max} are allowed`);
  return value;
}

/** A list of names (tags, lists, ids): each trimmed, non-empty, within size; duplicates dropped. */
export function checkNames(field: string, values: readonly string[], opts: { max?: number; required?: boolean } = {}): string[] {
  const max = opts.max ?? Limits.valuesPerField;
  if (values.length > max) throw invalidArgument(field, `has ${values.length} values; at most ${max} are allowed`);
  const out = new Set<string>();
  values.forEach((raw, i) => {
    const value = raw.trim();
    if (!value) throw invalidArgument(`${field}[${i}]`, "is empty");
    checkText(`${field}[${i}]`, value);
    out.add(value);
  });
  if (opts.required && out.size === 0) throw invalidArgument(field, "needs at least one value");
  return [...out];
}

/**
 * A variable name: any language, spaces and dots allowed, control characters not (the stored name/value pair
 * uses one as its separator, and no person types them).
 */
export function checkVariableName(field: string, name: string): string {
  checkText(field, name, Limits.variableName);
  if ([...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch === "\u007f")) throw invalidArgument(field, "a variable name cannot hold control characters");
  return name;
}
