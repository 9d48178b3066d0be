// ESLint rule `lessonplan/workflow-imports`: what a workflow module may import.
//
// Temporal bundles src/workflows (and everything it imports) into an isolated V8 context
// that has no Node.js APIs and must replay deterministically. A Node built-in or a module
// written for activities and workers either fails the bundle at worker start or, worse,
// brings non-deterministic code into workflows. So a workflow module may import:
//   - the packages listed in `packages` (exactly those specifiers, no subpaths: for example
//     @temporalio/common/lib/internal-non-workflow is not workflow-safe);
//   - relative paths that resolve into one of `dirs` (the workflow-safe folders, relative
//     to `root`, the project's folder);
//   - anything at all through `import type` / `export type`, which TypeScript erases.
// An `import { type X }` is not enough: it is a value import that happens to carry types,
// and with verbatim module syntax it would keep the module in the bundle.
import { builtinModules } from 'node:module';
import path from 'node:path';

const builtins = new Set(builtinModules);

/** @param {string} source */
function isBuiltin(source) {
  return source.startsWith('node:') || builtins.has(source) || builtins.has(source.split('/')[0] ?? '');
}

/** @type {import('eslint').Rule.RuleModule} */
export const workflowImports = {
  meta: {
    type: 'problem',
    docs: { description: 'Workflow modules import only workflow-safe modules (Temporal workflow sandbox)' },
    schema: [
      {
        type: 'object',
        properties: {
          packages: { type: 'array', items: { type: 'string' } },
          dirs: { type: 'array', items: { type: 'string' } },
          root: { type: 'string' },
        },
        required: ['packages', 'dirs', 'root'],
        additionalProperties: false,
      },
    ],
    messages: {
      builtin:
        "'{{source}}' is a Node.js built-in: workflow code runs in Temporal's sandbox without Node APIs. Do this in an activity (or use `import type` for types only).",
      module:
        "'{{source}}' is not workflow-safe: a workflow may import {{packages}}, and relative modules under {{dirs}}. Move the code into an activity, or use `import type` for types only.",
      dynamic: 'A workflow must not import modules at run time (`import()`): the workflow bundle is built once, when the worker starts.',
    },
  },
  create(context) {
    const { packages, dirs, root } = /** @type {{ packages: string[]; dirs: string[]; root: string }} */ (context.options[0]);
    const safeDirs = dirs.map((d) => path.resolve(root, d));
    const here = path.dirname(context.filename);

    /** @param {string} source */
    function allowed(source) {
      if (packages.includes(source)) return true;
      if (!source.startsWith('./') && !source.startsWith('../')) return false;
      const target = path.resolve(here, source);
      return safeDirs.some((dir) => target.startsWith(dir + path.sep));
    }

    /**
     * @param {import('estree').Literal | null | undefined} sourceNode
     * @param {boolean} typeOnly
     */
    function check(sourceNode, typeOnly) {
      if (!sourceNode || typeOnly || typeof sourceNode.value !== 'string') return;
      const source = sourceNode.value;
      if (allowed(source)) return;
      context.report({
        node: sourceNode,
        messageId: isBuiltin(source) ? 'builtin' : 'module',
        data: { source, packages: packages.join(', '), dirs: dirs.join(', ') },
      });
    }

    // typescript-eslint's AST marks type-only declarations with importKind / exportKind 'type'.
    /** @param {any} node */
    const isTypeOnly = (node) => node.importKind === 'type' || node.exportKind === 'type';

    return {
      ImportDeclaration: (node) => check(node.source, isTypeOnly(node)),
      ExportNamedDeclaration: (node) => check(node.source, isTypeOnly(node)),
      ExportAllDeclaration: (node) => check(node.source, isTypeOnly(node)),
      ImportExpression: (node) => context.report({ node, messageId: 'dynamic' }),
      // import x = require('...')
      /** @param {any} node */
      TSImportEqualsDeclaration: (node) =>
        node.moduleReference.type === 'TSExternalModuleReference' && check(node.moduleReference.expression, isTypeOnly(node)),
    };
  },
};
