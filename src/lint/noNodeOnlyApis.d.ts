// Types for the plain-JavaScript rule (ESLint loads the .js; tests type-check against this).
import type { Rule } from "eslint";

/** ESLint rule: no Buffer, require, __dirname/__filename or Node built-in modules outside "use node" files. */
export declare const noNodeOnlyApis: Rule.RuleModule;
