/**
 * Arguments that carry a secret (a credential, an API key, an OAuth
 * completion token), checked here instead of by Convex.
 *
 * When Convex's own argument validation refuses a call, its error quotes the
 * offending object whole ("Object contains extra field `x` that is not in
 * the validator. Object: {…}", "Value: …"; crates/common/src/schemas/
 * validator.rs in get-convex/convex-backend), so a malformed call would
 * write the secret into the deployment's logs, every log stream and the
 * error the client sees. Functions that take a secret therefore declare no
 * `args` validator at all (Convex then validates nothing: the arguments may
 * be any value), type their handler's parameter with `ObjectType` of the
 * same validators (so the dashboard's generated `api` keeps the precise
 * argument types), and call `checkArgs` first. Its errors are the project's
 * INVALID_ARGUMENT with the argument's name in `field`, and never contain a
 * value, nor the name of an argument that should not be there.
 *
 * It checks the validator kinds these functions use: string, literal, union
 * of those, optional, id (a string here; builders normalize ids against the
 * database), and record of strings (credentials).
 */
import type { GenericValidator, ObjectType, PropertyValidators } from "convex/values";
import { appError } from "../errors";

/** Most entries a record argument (credentials) may have; integrations take a handful. */
export const MAX_RECORD_ENTRIES = 32;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** INVALID_ARGUMENT naming `field` when given (an undeclared argument is not named). */
function refuse(field: string | undefined, message: string): never {
  throw appError("INVALID_ARGUMENT", message, field === undefined ? {} : { field });
}

/** Whether `value` passes `validator` (the kinds listed above; any other kind never passes). */
function matches(validator: GenericValidator, value: unknown): boolean {
  switch (validator.kind) {
    case "string":
    case "id":
      return typeof value === "string";
    case "literal":
      return value === validator.value;
    case "union":
      return (validator.members as GenericValidator[]).some((member) => matches(member, value));
    case "record":
      return (
        isPlainObject(value) &&
        Object.keys(value).length <= MAX_RECORD_ENTRIES &&
        Object.entries(value).every(([key, entry]) => matches(validator.key as GenericValidator, key) && matches(validator.value as GenericValidator, entry))
      );
    default:
      return false;
  }
}

/** What a validator expects, in words, for messages. */
function describe(validator: GenericValidator): string {
  switch (validator.kind) {
    case "string":
      return "a string";
    case "id":
      return `an id of table ${validator.tableName}`;
    case "literal":
      return JSON.stringify(validator.value);
    case "union":
      return `one of ${(validator.members as GenericValidator[]).map(describe).join(", ")}`;
    case "record":
      return `an object of at most ${MAX_RECORD_ENTRIES} string fields`;
    default:
      return validator.kind;
  }
}

/**
 * `raw` as the object `validators` describe, or INVALID_ARGUMENT naming the
 * first argument that is missing or of the wrong type. An argument that is
 * not declared is refused too, without naming it (a client could have put a
 * secret in a field name). Values are never quoted.
 */
export function checkArgs<V extends PropertyValidators>(raw: unknown, validators: V): ObjectType<V> {
  const names = Object.keys(validators);
  if (!isPlainObject(raw)) refuse(undefined, `Expected an object with the arguments ${names.join(", ")}`);
  if (Object.keys(raw).some((name) => !Object.hasOwn(validators, name) && raw[name] !== undefined)) {
    refuse(undefined, `Unexpected argument: this function takes only ${names.join(", ")}`);
  }
  for (const [name, validator] of Object.entries(validators) as [string, GenericValidator][]) {
    const value = raw[name];
    if (value === undefined) {
      if (validator.isOptional === "optional") continue;
      refuse(name, `Missing argument "${name}"`);
    }
    if (!matches(validator, value)) refuse(name, `Argument "${name}" must be ${describe(validator)}`);
  }
  return raw as ObjectType<V>;
}
