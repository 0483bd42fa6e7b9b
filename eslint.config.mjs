// ESLint (flat config) with typescript-eslint's type-checked rules, and the
// layer rules of CONTRIBUTING.md: which folder may import which, and what the
// workflow code (workflows/) and the contract it shares (contract/) may use.
import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The layers of the product code, and what each may import besides itself.
 * Anything not listed is forbidden, so an import that runs upward (or from
 * the API into the worker side) fails `npm run check`.
 */
const LAYERS = {
  contract: [],
  common: ['contract'],
  catalog: ['contract', 'common'],
  mcp: ['contract', 'common'],
  'tool-call': ['contract', 'common'],
  runtimes: ['contract', 'common', 'tool-call'],
  runners: ['contract', 'common', 'tool-call', 'runtimes', 'catalog', 'mcp'],
  activities: ['contract', 'common', 'tool-call', 'runners', 'catalog'],
  workflows: ['contract'],
  worker: ['contract', 'common', 'mcp', 'runtimes', 'runners', 'activities'],
  api: ['contract', 'common', 'catalog', 'mcp'],
  dev: ['contract', 'common'],
  service: ['contract', 'common', 'api', 'worker', 'dev'],
  // The command-line client talks HTTP; it takes only types of the API's answers from api/.
  cli: ['contract', 'common', 'api'],
};
const OUTSIDE_PRODUCT = ['test', 'bench'];

const layerZones = Object.entries(LAYERS).map(([layer, allowed]) => ({
  target: `./${layer}`,
  from: [...Object.keys(LAYERS), ...OUTSIDE_PRODUCT].filter((other) => other !== layer && !allowed.includes(other)).map((f) => `./${f}`),
  message: `${layer}/ may import only ${allowed.length ? allowed.map((a) => `${a}/`).join(', ') : 'itself'} (layer rules: CONTRIBUTING.md).`,
}));

/**
 * Rules of the workflow-safe folders: no Node built-ins, and at run time no
 * package but `packages` (type-only imports of anything are fine: they vanish
 * from the workflow bundle).
 */
const workflowSafe = (packages, why, morePatterns = []) => ({
  'import-x/no-nodejs-modules': 'error',
  '@typescript-eslint/no-restricted-imports': [
    'error',
    {
      patterns: [
        {
          regex: `^(?!\\.{1,2}/|(${packages.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$)`,
          allowTypeImports: true,
          message: why,
        },
        ...morePatterns,
      ],
    },
  ],
});

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', 'test/replay/histories/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json'] })] },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test() and describe() return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      // An AbortSignal's reason is `any`: rejecting and throwing it as it is keeps cancellations what they are.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'import-x/no-restricted-paths': ['error', { zones: layerZones }],
      'import-x/no-cycle': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: workflowSafe(
      ['@temporalio/workflow', '@temporalio/common'],
      'workflow code is deterministic and bundled for the workflow sandbox: it imports only contract/ and @temporalio/workflow or @temporalio/common.',
      // The request schema is zod: the workflow takes only its types, so zod stays out of the workflow bundle.
      [{ regex: '/request-schema$', allowTypeImports: true, message: 'the workflow imports only types from the request schema.' }],
    ),
  },
  {
    files: ['contract/**/*.ts'],
    rules: workflowSafe(
      ['@temporalio/workflow', '@temporalio/common', 'zod'],
      'contract/ is imported by workflow code: no Node built-ins, and at run time only @temporalio/workflow, @temporalio/common and zod.',
    ),
  },
  {
    // Tests and benchmarks read loosely typed JSON (SSE frames, histories): the any-safety rules would only add casts.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['eslint.config.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
