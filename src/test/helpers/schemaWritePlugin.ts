/**
 * A Vite plugin for vitest.config.ts: every document convex-test writes is
 * also passed to `globalThis.__dashtraySchemaWrite` (installed by
 * src/test/setup.ts, checked by helpers/schemaCheck.ts). convex-test
 * validates writes against the schema itself but skips `v.record`, which
 * real Convex checks at every write and, at deploy, against every stored
 * document. The hook is added at the top of convex-test's one write check,
 * `DatabaseFake._validate(tableName, doc)`, which insert, patch (with the
 * merged document) and replace call for every table of every test backend.
 *
 * If convex-test changes so that the method is not found, loading it fails
 * with a message saying so, rather than the check silently not running.
 */
const METHOD = "    _validate(tableName, doc) {\n";
const HOOK = "        globalThis.__dashtraySchemaWrite?.(tableName, doc, this._schema);\n";

export function convexTestSchemaWriteHook() {
  return {
    name: "dashtray-convex-test-schema-write-hook",
    enforce: "pre" as const,
    transform(code: string, id: string) {
      if (!/[\\/]convex-test[\\/]dist[\\/]index\.js$/.test(id.split("?")[0] ?? "")) return null;
      const normalized = code.replace(/\r\n/g, "\n");
      if (normalized.split(METHOD).length !== 2) {
        throw new Error(
          "src/test/helpers/schemaWritePlugin.ts: convex-test's DatabaseFake._validate(tableName, doc) was not found " +
            "exactly once in convex-test/dist/index.js; the schema check (v.record included) cannot be installed. " +
            "Update the plugin for this convex-test version.",
        );
      }
      return { code: normalized.replace(METHOD, METHOD + HOOK), map: null };
    },
  };
}
