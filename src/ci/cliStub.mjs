// The real Convex CLI run offline against a stub deployment on 127.0.0.1,
// shared by the bundle check (bundleCheck.mjs) and codegen (codegen.mjs).
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import process from "node:process";

/**
 * A loopback HTTP server standing in for a self-hosted deployment. It
 * records every request and answers the paths in `answers` with their JSON;
 * anything else gets 503.
 */
export async function startStubDeployment(answers = {}) {
  const requests = [];
  const server = http.createServer((request, response) => {
    const requestPath = (request.url ?? "").split("?")[0];
    requests.push(`${request.method} ${requestPath}`);
    request.resume();
    request.on("end", () => {
      const answer = answers[requestPath];
      if (answer) response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
      else response.writeHead(503, { "content-type": "application/json" }).end('{"code":"StubDeployment","message":"stub stops here"}');
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Runs node with `args` in `cwd`; resolves with its exit code and combined output. */
export function runNode(args, { cwd, env = process.env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/**
 * Runs `convex <args>` of `projectRoot`'s own convex package with a throwaway
 * home directory (no account files, no telemetry: CI is set) and no
 * deployment variables from the caller's environment.
 */
export async function runConvexCli(projectRoot, args) {
  const home = await mkdtemp(path.join(tmpdir(), "convex-cli-home-"));
  const env = { ...process.env, CI: "1", HOME: home, USERPROFILE: home, npm_config_update_notifier: "false" };
  for (const name of ["CONVEX_DEPLOYMENT", "CONVEX_DEPLOY_KEY", "CONVEX_SELF_HOSTED_URL", "CONVEX_SELF_HOSTED_ADMIN_KEY", "CONVEX_URL"]) {
    delete env[name];
  }
  try {
    return await runNode([path.join(projectRoot, "node_modules", "convex", "bin", "main.js"), ...args], { cwd: projectRoot, env });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
