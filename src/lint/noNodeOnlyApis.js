// ESLint rule: queries, mutations and default-runtime actions run in Convex's
// V8 runtime, which has Web APIs only. The edge-runtime test environment has
// Buffer, so tests would not notice; this rule does. Files that start with a
// "use node" directive run in Node.js and are exempt.
//
// Globals are found through scope analysis (references that resolve to no
// declaration), so a local binding, a property, a class member or an import
// alias named "Buffer" is not reported, while `globalThis.Buffer` is.

import { builtinModules } from "node:module";

const NODE_BUILTINS = new Set(builtinModules);
const NODE_ONLY_GLOBALS = new Set(["Buffer", "require", "__dirname", "__filename"]);
const GLOBAL_OBJECTS = new Set(["globalThis", "global", "self", "window"]);

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

/** References in the file to globals (declared nowhere in it), by name. */
function globalReferences(globalScope) {
  const references = [...globalScope.through];
  for (const variable of globalScope.variables) {
    // Globals from the ESLint config are variables without a declaration.
    if (variable.defs.length === 0) references.push(...variable.references);
  }
  return references;
}

/** The property name of `object.name` or `object["name"]`, if static. */
function staticPropertyName(member) {
  if (!member.computed && member.property.type === "Identifier") return member.property.name;
  if (member.computed && member.property.type === "Literal") return member.property.value;
  return undefined;
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
      "Program:exit"(program) {
        if (exempt) return;
        for (const reference of globalReferences(context.sourceCode.getScope(program))) {
          const identifier = reference.identifier;
          const parent = identifier.parent;
          if (NODE_ONLY_GLOBALS.has(identifier.name)) {
            context.report({ node: identifier, messageId: "global", data: { name: identifier.name } });
          } else if (
            GLOBAL_OBJECTS.has(identifier.name) &&
            parent?.type === "MemberExpression" &&
            parent.object === identifier &&
            NODE_ONLY_GLOBALS.has(staticPropertyName(parent))
          ) {
            context.report({ node: parent, messageId: "global", data: { name: staticPropertyName(parent) } });
          }
        }
      },
    };
  },
};
