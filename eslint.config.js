import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Node's built-in modules, bare and with the node: prefix: the renderer and shared/ may use none.
const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  {
    ignores: [
      'out/**',
      'dist/**',
      'node_modules/**',
      'test-results/**',
      'playwright-report/**',
      'electron/engine/chunking/generated/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  // Layering (see docs/architecture in README): arrows point one way.
  {
    files: ['electron/engine/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'electron',
              message:
                'electron/engine runs in plain Node (CLI, server, tests): never import electron.',
            },
          ],
          patterns: [
            {
              group: ['**/main/**', '**/preload/**', '**/cli/**', '**/server/**', '**/renderer/**'],
              message: 'The engine sits below every front end: it imports only shared/ and itself.',
            },
            {
              group: ['react', 'react-dom', 'zustand'],
              message: 'The engine has no UI dependencies.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({
              name,
              message: 'The renderer never touches Node: it talks only to the API object.',
            })),
            {
              name: 'electron',
              message: 'The renderer talks only to the API object exposed by the preload.',
            },
          ],
          patterns: [
            {
              group: ['**/electron/**'],
              message: 'The renderer imports only shared/ (the contract), never electron/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({
              name,
              message: 'shared/ is the contract: it runs in the renderer too, so no Node modules.',
            })),
            { name: 'electron', message: 'shared/ is the contract: no electron.' },
          ],
          patterns: [
            {
              group: ['**/electron/**', '**/renderer/**'],
              message: 'shared/ depends on nothing else in the project.',
            },
          ],
        },
      ],
    },
  },
);
