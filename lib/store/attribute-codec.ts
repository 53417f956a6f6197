import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { StoreInputError } from './schema.ts';

/**
 * JSON values <-> DynamoDB attribute values. Records and audit entries are plain JSON data, so
 * this small codec covers them without another dependency, and it refuses what JSON could not
 * carry either (NaN, functions, class instances) with the path of the offending field, instead of
 * storing something that reads back different.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export function toAttribute(value: unknown, path: string): AttributeValue {
  if (value === null) return { NULL: true };
  switch (typeof value) {
    case 'string':
      return { S: value };
    case 'boolean':
      return { BOOL: value };
    case 'number':
      if (!Number.isFinite(value)) throw new StoreInputError(`${path} must be a finite number, got ${value}`);
      return { N: String(value) };
    case 'object':
      if (Array.isArray(value)) {
        // As in JSON, a hole or undefined in a list becomes null so positions are kept.
        return { L: value.map((item, index) => toAttribute(item ?? null, `${path}[${index}]`)) };
      }
      if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
        return { M: toAttributeMap(value as Record<string, unknown>, path) };
      }
      throw new StoreInputError(
        `${path} must be plain JSON data, got an instance of ${value.constructor?.name}`,
      );
    default:
      throw new StoreInputError(`${path} must be plain JSON data, got a ${typeof value}`);
  }
}

/** Fields that are undefined are left out, as JSON.stringify does. */
export function toAttributeMap(
  object: Record<string, unknown>,
  path: string,
): Record<string, AttributeValue> {
  const map: Record<string, AttributeValue> = {};
  for (const [key, value] of Object.entries(object)) {
    if (value !== undefined) map[key] = toAttribute(value, `${path}.${key}`);
  }
  return map;
}

export function fromAttribute(value: AttributeValue, path: string): JsonValue {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.L !== undefined) return value.L.map((item, index) => fromAttribute(item, `${path}[${index}]`));
  if (value.M !== undefined) return fromAttributeMap(value.M, path);
  throw new Error(`${path}: stored attribute of type ${Object.keys(value).join(',')} is not JSON data`);
}

export function fromAttributeMap(
  map: Record<string, AttributeValue>,
  path: string,
): { [key: string]: JsonValue } {
  const object: { [key: string]: JsonValue } = {};
  for (const [key, value] of Object.entries(map)) object[key] = fromAttribute(value, `${path}.${key}`);
  return object;
}

/**
 * An upper bound of the size DynamoDB counts for an item (names plus values; numbers at their
 * maximum of 21 bytes), to refuse a record before DynamoDB does, with a message that says why.
 */
export function itemSizeBytes(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item))
    size += Buffer.byteLength(name, 'utf8') + valueSize(value);
  return size;
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S, 'utf8');
  if (value.N !== undefined) return 21;
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.L !== undefined) return value.L.reduce((sum, item) => sum + 1 + valueSize(item), 3);
  if (value.M !== undefined) {
    return Object.entries(value.M).reduce(
      (sum, [name, item]) => sum + 1 + Buffer.byteLength(name, 'utf8') + valueSize(item),
      3,
    );
  }
  // Sets are never written by the store; count them generously rather than fail.
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}
