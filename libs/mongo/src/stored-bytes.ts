/** A lean read returns BSON Binary, not Buffer, for a Buffer field: the bytes either way. */
export function storedBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  const inner = (value as { buffer?: unknown } | null | undefined)?.buffer;
  if (inner instanceof Uint8Array) return inner;
  throw new Error("a stored value is not binary");
}
