#!/usr/bin/env node
// `npm run codegen`: writes src/convex/_generated exactly as `npx convex dev`
// (and `npx convex deploy`) write it, offline.
//
// `convex codegen` writes an older form of these files: `npx convex dev`
// then rewrites them (api.js and api.d.ts gain `components`, server.d.ts
// types `env` with only the platform's variables), and a commit of its
// output would not match. So this runs the real CLI's push, which writes
// _generated in two steps: before contacting the deployment, then again
// with what the deployment's start_push answers (for an app without
// components: no child components, no declared environment variables). The
// deployment is a loopback stub (cliStub.mjs) that answers the four
// requests before that point and refuses the fifth (wait_for_schema), so
// nothing is pushed and nothing leaves the machine; then the CLI stops.
//
// Usage: node src/ci/codegen.mjs [projectRoot]   (default: this repository)
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runConvexCli, startStubDeployment } from "./cliStub.mjs";

const projectRoot = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "../.."));
const packageVersion = (await import(path.join(projectRoot, "node_modules", "convex", "package.json"), { with: { type: "json" } })).default
  .version;

/** What a deployment without components answers, up to start_push (convex/dist/cli.bundle.cjs, deployApi). */
const noSchemaChange = { allocatedComponentIds: null, schemaIds: null };
const ANSWERS = {
  "/api/get_config_hashes": { config: { functions: "src/convex/" }, moduleHashes: [], nodeDependencies: [], udfServerVersion: packageVersion },
  "/api/deploy2/evaluate_schema": { componentSchemaEvaluations: {}, newComponentDefinitions: [] },
  "/api/deploy2/evaluate_push": { schemaChange: noSchemaChange },
  "/api/deploy2/start_push": {
    environmentVariables: {},
    externalDepsId: null,
    componentDefinitionPackages: {},
    appAuth: [],
    analysis: {
      "": {
        definition: { path: "", definitionType: { type: "app" }, childComponents: [], httpMounts: {}, exports: { type: "branch", branch: [] }, envVars: [] },
        schema: null,
        functions: {},
        udfConfig: { serverVersion: packageVersion, importPhaseRngSeed: null, importPhaseUnixTimestamp: null },
      },
    },
    app: { definitionPath: "", componentPath: "", args: {}, childComponents: {}, httpRoutes: { httpModuleRoutes: null, mounts: [] }, exports: {} },
    schemaChange: noSchemaChange,
  },
};
const STOP = "POST /api/deploy2/wait_for_schema";

const stub = await startStubDeployment(ANSWERS);
try {
  const { output } = await runConvexCli(projectRoot, ["deploy", "--url", stub.url, "--admin-key", "codegen", "--typecheck", "disable", "--yes"]);
  // The push must have got past start_push (the second codegen step) and stopped at the stub's refusal.
  if (!stub.requests.includes("POST /api/deploy2/start_push") || stub.requests.at(-1) !== STOP || !output.includes(stub.url)) {
    process.stderr.write(`${output}\n`);
    process.stderr.write(
      `codegen FAILED: the Convex CLI did not reach the point where it writes _generated (requests: ${stub.requests.join(", ") || "none"}). ` +
        "A newer CLI may need src/ci/codegen.mjs's stub answers updated.\n",
    );
    process.exitCode = 1;
  } else {
    process.stdout.write("codegen: src/convex/_generated written as `npx convex dev` writes it\n");
  }
} finally {
  await stub.close();
}
