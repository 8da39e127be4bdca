// ESLint rule: queries, mutations and default-runtime actions run in Convex's
// V8 runtime, which has Web APIs only. The edge-runtime test environment has
// Buffer, so tests would not notice; this rule does. Files that start with a
// "use node" directive run in Node.js and are exempt.

import { builtinModules } from "node:module";

const NODE_BUILTINS = new Set(builtinModules);
const NODE_ONLY_GLOBALS = new Set(["Buffer", "require", "__dirname", "__filename"]);

function isUseNodeFile(program) {
  return program.body.some(
    (statement) =>
      statement.type === "ExpressionStatement" &&
      statement.directive === "use node",
  );
}

function isNodeOnlyModule(source) {
  if (typeof source !== "string") return false;
  return source.startsWith("node:") || NODE_BUILTINS.has(source.split("/")[0]);
}

/** @type {import("eslint").Rule.RuleModule} */
export const noNodeOnlyApis = {
  meta: {
    type: "problem",
    docs: {
      description:
        'Forbid Node-only APIs (Buffer, require, node:* modules) outside "use node" files',
    },
    schema: [],
    messages: {
      global:
        '"{{name}}" does not exist in the Convex runtime. Use Web APIs (TextEncoder, atob/btoa, crypto.subtle) or move this code to a "use node" file.',
      module:
        'Module "{{source}}" is Node-only and does not exist in the Convex runtime. Move this code to a "use node" file.',
    },
  },
  create(context) {
    let exempt = false;
    const checkSource = (node) => {
      if (!exempt && node.source && isNodeOnlyModule(node.source.value)) {
        context.report({ node, messageId: "module", data: { source: node.source.value } });
      }
    };
    return {
      Program(program) {
        exempt = isUseNodeFile(program);
      },
      ImportDeclaration: checkSource,
      ExportAllDeclaration: checkSource,
      ExportNamedDeclaration: checkSource,
      ImportExpression(node) {
        if (!exempt && node.source.type === "Literal" && isNodeOnlyModule(node.source.value)) {
          context.report({ node, messageId: "module", data: { source: node.source.value } });
        }
      },
      Identifier(node) {
        if (exempt || !NODE_ONLY_GLOBALS.has(node.name)) return;
        // Only references to the global, not properties or local bindings.
        const parent = node.parent;
        if (parent && parent.type === "MemberExpression" && parent.property === node && !parent.computed) return;
        if (parent && parent.type === "Property" && parent.key === node && !parent.computed) return;
        const scope = context.sourceCode.getScope(node);
        let current = scope;
        while (current) {
          const variable = current.set.get(node.name);
          if (variable && variable.defs.length > 0) return;
          current = current.upper;
        }
        context.report({ node, messageId: "global", data: { name: node.name } });
      },
    };
  },
};
