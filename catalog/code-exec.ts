/**
 * code_exec_python, code_exec_node, code_exec_ruby, code_exec_go: the model
 * passes `code` and optional `packages`; the answer is, as Heroku's, a
 * CallToolResult whose text is `{"returncode":N,"stdout":"…","stderr":"…"}`.
 * Where and how the code runs: runners/code-exec.ts.
 */
import { noToolParams } from './no-tool-params';
import type { ToolSpec } from './tool-spec';

export type CodeExecTool = 'code_exec_python' | 'code_exec_node' | 'code_exec_ruby' | 'code_exec_go';

interface Language {
  tool: CodeExecTool;
  /** As the model is told, e.g. "Python 3". */
  label: string;
  /** What installs packages, for the description. */
  installer: string;
  /** Added to the description. */
  hint?: string;
}

const LANGUAGES: Language[] = [
  { tool: 'code_exec_python', label: 'Python 3', installer: 'pip' },
  { tool: 'code_exec_node', label: 'Node.js', installer: 'npm', hint: 'The code runs as a CommonJS script: load ES modules with import().' },
  { tool: 'code_exec_ruby', label: 'Ruby', installer: 'gem' },
  { tool: 'code_exec_go', label: 'Go', installer: 'go get', hint: 'The code is one file of package main with a func main.' },
];

function codeExecSpec(lang: Language): ToolSpec<Record<string, never>> {
  return {
    name: lang.tool,
    // A dyno may touch the app's resources; the sandbox leaves nothing behind.
    sideEffect: (runtime) => (runtime.target_app_name ? 'side-effecting' : 'idempotent'),
    requiresApp: false,
    payload: 'call-tool-result',
    toolParams: noToolParams,
    modelFunction: (_params, description) => ({
      description:
        description ??
        [
          `Runs a ${lang.label} code snippet, with optional ${lang.installer} packages, and returns JSON with its`,
          "'returncode', 'stdout' and 'stderr'. Print what you need to see. A non-zero returncode is an error and should be fixed.",
          lang.hint,
        ]
          .filter(Boolean)
          .join(' '),
      parameters: {
        type: 'object',
        properties: {
          code: { type: 'string', description: `The ${lang.label} source code to run, as a complete program.` },
          packages: {
            type: 'array',
            description: `Optional: ${lang.installer} packages to install before running the code.`,
            items: { type: 'string', pattern: '^[^\\s-]\\S*$' },
          },
        },
        required: ['code'],
      },
    }),
  };
}

export const codeExecTools = LANGUAGES.map(codeExecSpec);
