// safeToRemoveOldKey: a key-id list cut at its cap keeps OLD_MASTER_KEY; a row with plaintext beside
// ciphertext under the old key counts that key's id (from review).
import { expect, test } from "vitest";
import { MAX_TALLY_KEY_IDS, emptyTally, tallyRow } from "../convex/reencryption/rows";
import { safeToRemoveOldKey } from "../convex/reencryption/status";
import type { Inventory, KeyringState } from "../convex/reencryption/validators";
import { checkArgs } from "../convex/access/builders";
import { v } from "convex/values";

const state: KeyringState = { current: "new", previous: ["old"], invalidEntries: [], oldKeySavedOnly: false, currentKeyWeak: [], message: "" };

function inventory(change: Partial<Inventory["tally"]>, keyIds = 1): Inventory {
  const ids = Array.from({ length: keyIds }, (_, i) => ({ keyId: i === 0 ? "new" : `k${i}`, format: "v2" as const, rows: 1, configured: "current" as const }));
  return { takenAt: 0, pages: 1, tally: { ...emptyTally(), rows: 1, upToDate: 1, ...change }, keyIds: ids, missingKeyIds: [], needOldKey: 0 };
}

test("safe when every value is under the current key", () => {
  expect(safeToRemoveOldKey(state, inventory({}), null)).toBe(true);
});

test("plaintext beside a ciphertext under the old key: 1 invalid row, the old key's id counted", () => {
  const tally = emptyTally();
  const doc = { encryptedCredentials: "dtenc:v2:_gSkCtFZK1w:Nm_qiipfigSPD34x:fN921LNzRq-iyBTNwsgjmQ", credentials: { token: "x" } };
  tallyRow(tally, { table: "connections", doc } as unknown as Parameters<typeof tallyRow>[1], { v2: ["new", "_gSkCtFZK1w"], v1: [] } as never);
  expect(tally.invalid).toBe(1);
  expect(tally.keyIds).toEqual([{ keyId: "_gSkCtFZK1w", format: "v2", rows: 1 }]);
});

test(`a key-id list at its cap of ${MAX_TALLY_KEY_IDS} keeps OLD_MASTER_KEY`, () => {
  expect(safeToRemoveOldKey(state, inventory({}, MAX_TALLY_KEY_IDS), null)).toBe(false);
});

test("checkArgs refuses inherited names (constructor, toString) as undeclared", () => {
  for (const name of ["constructor", "toString", "hasOwnProperty"]) {
    expect(() => checkArgs({ a: "x", [name]: "y" }, { a: v.string() })).toThrow(/Unexpected argument/);
  }
});
