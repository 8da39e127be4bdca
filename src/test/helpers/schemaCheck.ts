/**
 * Checks values against Convex validators the way the Convex backend does
 * (crates/common/src/schemas/validator.rs, check_value), from the validators'
 * JSON form (`validator.json`, what `defineTable(...).export()` holds as
 * `documentType`). convex-test validates writes too but skips `v.record`
 * entirely (keys and values); this checker covers every kind:
 *
 * - null, number (float64), bigint (int64), boolean, string, bytes (ArrayBuffer), any;
 * - literal (bigint literals included, compared as Convex values);
 * - id: a string naming a document of that table (convex-test's ids end with
 *   the table name; real ids encode the table number);
 * - array, object (missing required fields, extra fields, `optional`),
 *   union (any member), record (every key against the key validator, every
 *   value against the value validator).
 *
 * Field names are checked as Convex checks every stored object's keys
 * (crates/sync_types/src/identifier.rs): no leading "$", only non-control
 * ASCII, at most 1024 characters, at most 1024 fields per object.
 *
 * Problems name the path (`.settings.keys()`, `.credentials["x"]`, `[3]`)
 * and the value's type, never the value itself: documents hold ciphertexts,
 * hashes and test secrets.
 */
import { jsonToConvex, type JSONValue, type ValidatorJSON } from "convex/values";

const MAX_FIELD_NAME_LENGTH = 1024;
const MAX_OBJECT_FIELDS = 1024;

/** A short description of a value's Convex type, for messages (never the value). */
export function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return "int64";
  if (typeof value === "number") return "float64";
  if (value instanceof ArrayBuffer) return "bytes";
  if (Array.isArray(value)) return `array(${value.length})`;
  if (typeof value === "object") return "object";
  return typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof ArrayBuffer) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** Why `name` is not a field name Convex stores, or null. */
export function fieldNameProblem(name: string): string | null {
  if (name.startsWith("$")) return "starts with '$' (reserved)";
  if (name.length > MAX_FIELD_NAME_LENGTH) return `is longer than ${MAX_FIELD_NAME_LENGTH} characters`;
  for (const char of name) {
    const code = char.codePointAt(0)!;
    if (code > 0x7e || code < 0x20) return "has a character that is not printable ASCII";
  }
  return null;
}

function pathOfKey(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key.slice(0, 40))}]`;
}

/** The table an id names, or null when it is not an id (convex-test: digits, then the table name). */
function tableOfId(id: string): string | null {
  const match = /^[0-9]+([A-Za-z_][A-Za-z0-9_]*)$/.exec(id);
  return match ? match[1]! : null;
}

/** Field-name and size problems of every object nested in `value` (what `v.any()` leaves unchecked). */
function objectShapeProblems(value: unknown, path: string, problems: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => objectShapeProblems(item, `${path}[${index}]`, problems));
    return;
  }
  if (!isPlainObject(value)) return;
  const keys = Object.keys(value);
  if (keys.length > MAX_OBJECT_FIELDS) problems.push(`${path}: object has ${keys.length} fields (Convex allows ${MAX_OBJECT_FIELDS})`);
  for (const key of keys) {
    const problem = fieldNameProblem(key);
    if (problem) problems.push(`${pathOfKey(path, key)}: field name ${problem}`);
    objectShapeProblems(value[key], pathOfKey(path, key), problems);
  }
}

/** Appends to `problems` every way `value` fails `validator`; returns whether it passed. */
export function checkValue(validator: ValidatorJSON, value: unknown, path: string, problems: string[]): boolean {
  const before = problems.length;
  const fail = (expected: string) => problems.push(`${path || "document"}: expected ${expected}, got ${typeOf(value)}`);
  switch (validator.type) {
    case "null":
      if (value !== null) fail("null");
      break;
    case "number":
      if (typeof value !== "number") fail("float64 (v.number())");
      break;
    case "bigint":
    case "commitTs":
      if (typeof value !== "bigint") fail("int64 (v.int64())");
      break;
    case "boolean":
      if (typeof value !== "boolean") fail("boolean");
      break;
    case "string":
      if (typeof value !== "string") fail("string");
      break;
    case "bytes":
      if (!(value instanceof ArrayBuffer)) fail("bytes (ArrayBuffer)");
      break;
    case "any":
      if (value === undefined) fail("a Convex value");
      else objectShapeProblems(value, path, problems);
      break;
    case "literal": {
      const literal = jsonToConvex(validator.value as JSONValue);
      if (value !== literal) fail(`the literal ${typeof literal === "bigint" ? `${literal}n` : JSON.stringify(literal)}`);
      break;
    }
    case "id":
      if (typeof value !== "string") fail(`an id of table "${validator.tableName}"`);
      else if (tableOfId(value) !== validator.tableName) {
        problems.push(`${path || "document"}: expected an id of table "${validator.tableName}", got an id of ${JSON.stringify(tableOfId(value))}`);
      }
      break;
    case "array":
      if (!Array.isArray(value)) fail("array");
      else value.forEach((item, index) => checkValue(validator.value, item, `${path}[${index}]`, problems));
      break;
    case "object": {
      if (!isPlainObject(value)) {
        fail("object");
        break;
      }
      for (const [field, { fieldType, optional }] of Object.entries(validator.value)) {
        if (value[field] === undefined) {
          if (!optional) problems.push(`${pathOfKey(path, field)}: required field is missing`);
        } else {
          checkValue(fieldType, value[field], pathOfKey(path, field), problems);
        }
      }
      for (const field of Object.keys(value)) {
        if (value[field] !== undefined && !(field in validator.value)) problems.push(`${pathOfKey(path, field)}: field is not in the validator`);
        const problem = fieldNameProblem(field);
        if (problem) problems.push(`${pathOfKey(path, field)}: field name ${problem}`);
      }
      break;
    }
    case "record": {
      if (!isPlainObject(value)) {
        fail("object (v.record)");
        break;
      }
      const keys = Object.keys(value);
      if (keys.length > MAX_OBJECT_FIELDS) problems.push(`${path}: record has ${keys.length} keys (Convex allows ${MAX_OBJECT_FIELDS})`);
      for (const key of keys) {
        const problem = fieldNameProblem(key);
        if (problem) problems.push(`${pathOfKey(path, key)}: record key ${problem}`);
        checkValue(validator.keys as ValidatorJSON, key, `${pathOfKey(path, key)}.keys()`, problems);
        if (value[key] === undefined) problems.push(`${pathOfKey(path, key)}: record value is undefined`);
        else checkValue(validator.values.fieldType, value[key], `${pathOfKey(path, key)}.values()`, problems);
      }
      break;
    }
    case "union": {
      // Convex accepts a union when any member accepts the value.
      const attempts = validator.value.map((member) => {
        const memberProblems: string[] = [];
        checkValue(member, value, path, memberProblems);
        return memberProblems;
      });
      const passed = attempts.some((memberProblems) => memberProblems.length === 0);
      if (!passed) {
        const closest = attempts.reduce<string[] | null>((best, next) => (best === null || next.length < best.length ? next : best), null);
        problems.push(
          `${path || "document"}: matches none of the union's ${validator.value.length} members` +
            (closest && closest.length > 0 ? ` (closest: ${closest[0]})` : ""),
        );
      }
      break;
    }
    default: {
      const unknown: never = validator;
      problems.push(`${path}: validator kind ${JSON.stringify((unknown as { type: string }).type)} is not known to the schema check`);
    }
  }
  return problems.length === before;
}

/** Every problem of a document of `table` (without or with its system fields) against the table's validator. */
export function documentProblems(table: string, documentType: ValidatorJSON, document: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const { _id, _creationTime, ...fields } = document;
  if (_id !== undefined && tableOfId(String(_id)) !== table) problems.push(`._id: not an id of table "${table}"`);
  if (_creationTime !== undefined && typeof _creationTime !== "number") problems.push(`._creationTime: expected float64, got ${typeOf(_creationTime)}`);
  for (const field of Object.keys(fields)) {
    if (field.startsWith("_")) problems.push(`.${field}: top-level field names starting with "_" are reserved for system fields`);
  }
  checkValue(documentType, fields, "", problems);
  return problems;
}
