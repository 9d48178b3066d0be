// `npm run lint` runs ESLint with this config after tsc and prettier. Two rule sets, the
// ones Temporal's TypeScript samples rely on:
//   - no-floating-promises everywhere: a promise nobody awaits loses its failure (in a
//     workflow, a forgotten activity or timer is a silent bug). Deliberately unawaited
//     promises are written `void promise` with a comment saying why.
//   - workflow modules (and the src/shared modules they import) import only
//     workflow-safe code: see scripts/eslint/workflowImports.js.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import { workflowImports } from './scripts/eslint/workflowImports.js';

export default defineConfig(
  { ignores: ['node_modules/', '.tools/', 'data/', 'test-artifacts/', 'test/histories/'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts', 'bin/*.js', 'scripts/**/*.js', 'eslint.config.js'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        // Type information from tsconfig.json; the few JavaScript files outside it get a
        // default project.
        projectService: { allowDefaultProject: ['bin/*.js', 'scripts/eslint/*.js', 'eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test(), it(), describe() and suite() return promises that the
          // runner itself awaits and reports; awaiting them would change nothing.
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }],
        },
      ],
    },
  },
  {
    files: ['src/workflows/**/*.ts', 'src/shared/**/*.ts'],
    plugins: { lessonplan: { rules: { 'workflow-imports': workflowImports } } },
    rules: {
      'lessonplan/workflow-imports': [
        'error',
        { packages: ['@temporalio/workflow', '@temporalio/common'], dirs: ['src/workflows', 'src/shared'], root: import.meta.dirname },
      ],
    },
  },
);
