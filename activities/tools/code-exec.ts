/**
 * code_exec_python, code_exec_node, code_exec_ruby, code_exec_go: run the
 * model's code and answer, as Heroku does, with a CallToolResult whose text is
 * `{"returncode":N,"stdout":"…","stderr":"…"}` (isError when N ≠ 0).
 *
 * Where: in a one-off dyno of target_app_name when HEROKU_API_KEY is set (the
 * code travels in TOOL_CODE, the packages in TOOL_PACKAGES, never in the
 * command string; the dyno's stdout and stderr arrive as one stream, reported
 * as stdout), else in the worker's local sandbox (the code is a file in the
 * sandbox's work dir; stdout and stderr are kept apart).
 *
 * `packages` are installed in a dyno (pip, npm, gem, go get). The local
 * sandbox has no network: a call that asks for packages there is not run and
 * gets returncode 1 and a stderr that says why.
 */
import { runCommand, runLocally, runsInDyno, MAX_OUTPUT_BYTES } from '../command-runtime';
import { callToolResult } from './call-tool-result';
import { GO_CACHE_DIR, GO_ENV, goBuildCache } from './go-build-cache';
import { noToolParams } from './no-tool-params';
import { ToolError, type Tool, type ToolRunContext } from './tool';

/** Exit status reported when the ttl stopped the code (as coreutils `timeout` does). */
export const TIMED_OUT_STATUS = 124;

interface Language {
  tool: string;
  /** As the model is told, e.g. "Python 3". */
  label: string;
  /** Added to the description. */
  hint?: string;
  /** What installs packages, for the description. */
  installer: string;
  file: string;
  argv: string[];
  env?: Record<string, string>;
  /** Shell (dyno): installs the words of $TOOL_PACKAGES into the current dir. */
  dynoInstall: string;
  /** Shell (dyno): runs the code file. */
  dynoRun: string;
  /** Host dirs to copy into the local work dir, made ready within the call's ttl. */
  localCopies?: { what: string; prepare(ctx: ToolRunContext): Promise<Record<string, string>> };
}

const LANGUAGES: Language[] = [
  {
    tool: 'code_exec_python',
    label: 'Python 3',
    installer: 'pip',
    file: 'main.py',
    argv: ['python3', 'main.py'],
    dynoInstall: 'python3 -m pip install --quiet --disable-pip-version-check --target .packages $TOOL_PACKAGES',
    dynoRun: 'PYTHONPATH="$PWD/.packages" python3 main.py',
  },
  {
    tool: 'code_exec_node',
    label: 'Node.js',
    hint: 'The code runs as a CommonJS script: load ES modules with import().',
    installer: 'npm',
    file: 'main.js',
    argv: ['node', 'main.js'],
    dynoInstall: 'npm install --silent --no-save --no-package-lock --no-audit --no-fund $TOOL_PACKAGES',
    dynoRun: 'node main.js',
  },
  {
    tool: 'code_exec_ruby',
    label: 'Ruby',
    installer: 'gem',
    file: 'main.rb',
    argv: ['ruby', 'main.rb'],
    dynoInstall: 'GEM_HOME="$PWD/.gems" gem install --silent --no-document $TOOL_PACKAGES',
    dynoRun: 'GEM_HOME="$PWD/.gems" ruby main.rb',
  },
  {
    tool: 'code_exec_go',
    label: 'Go',
    hint: 'The code is one file of package main with a func main.',
    installer: 'go get',
    file: 'main.go',
    argv: ['go', 'run', 'main.go'],
    env: GO_ENV,
    dynoInstall: 'go mod init sandbox 2>/dev/null && go get $TOOL_PACKAGES',
    dynoRun: 'go run main.go',
    localCopies: {
      what: "Go's build cache (the first Go call on this worker compiles the standard library)",
      prepare: async (ctx): Promise<Record<string, string>> => {
        const cache = await goBuildCache({ mode: ctx.config.toolSandbox, workerPath: ctx.config.env.PATH });
        return cache ? { [GO_CACHE_DIR]: cache } : {};
      },
    },
  },
];

interface Execution {
  returncode: number;
  stdout: string;
  stderr: string;
}

function codeExecTool(lang: Language): Tool<Record<string, never>> {
  return {
    name: lang.tool,
    // A dyno may touch the app's resources; the sandbox leaves nothing behind.
    sideEffect: (runtime) => (runtime.target_app_name ? 'side-effecting' : 'idempotent'),
    requiresApp: false,
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
    async run(ctx, _params, args) {
      const code = args.code as string;
      const packages = (args.packages as string[] | undefined) ?? [];
      let execution: Execution;
      try {
        execution = runsInDyno(ctx) ? await runInDyno(ctx, lang, code, packages) : await runInSandbox(ctx, lang, code, packages);
      } catch (err) {
        if (err instanceof ToolError) return callToolResult(err.message, true);
        throw err;
      }
      return callToolResult(JSON.stringify(execution), execution.returncode !== 0);
    },
  };
}

async function runInDyno(ctx: ToolRunContext, lang: Language, code: string, packages: string[]): Promise<Execution> {
  // `set -f`: package names are split into words but never globbed; the schema keeps them from starting with "-".
  const script =
    `set -f; d=$(mktemp -d) && cd "$d" && printf '%s' "$TOOL_CODE" > ${lang.file} && ` +
    `{ [ -z "$TOOL_PACKAGES" ] || { ${lang.dynoInstall}; }; } && ${lang.dynoRun}`;
  const outcome = await runCommand(ctx, script, { TOOL_CODE: code, TOOL_PACKAGES: packages.join(' ') });
  const notes: string[] = [];
  if (outcome.truncated) notes.push(truncationNote('output'));
  if (outcome.timedOut) notes.push(timeoutNote(ctx));
  else if (outcome.exitStatus === null) notes.push('[exit status unknown: the dyno ended without reporting one]');
  return {
    returncode: outcome.timedOut ? TIMED_OUT_STATUS : (outcome.exitStatus ?? -1),
    stdout: outcome.output,
    stderr: notes.join('\n'),
  };
}

async function runInSandbox(ctx: ToolRunContext, lang: Language, code: string, packages: string[]): Promise<Execution> {
  if (packages.length > 0) {
    const why =
      ctx.config.toolSandbox === 'bubblewrap'
        ? "this code runs in the worker's local sandbox, which has no network access"
        : "this code runs on the worker host, where tools do not install packages";
    return {
      returncode: 1,
      stdout: '',
      stderr:
        `packages cannot be installed: ${why} (asked for: ${packages.join(', ')}). ` +
        'The code was not run; call again without "packages" to use what is installed on the worker.',
    };
  }
  // Preparing the work dir (e.g. Go's first build cache) counts against the ttl.
  const deadline = Date.now() + ctx.runtime.ttl_seconds * 1000;
  const copies = lang.localCopies ? await withinDeadline(ctx, lang.localCopies.prepare(ctx), deadline) : {};
  const remaining = (deadline - Date.now()) / 1000;
  if (copies === undefined || remaining <= 0) {
    const what = lang.localCopies?.what ?? 'the run';
    const stderr =
      `[timed out after ${ctx.runtime.ttl_seconds}s] Preparing ${what} took all of it ` +
      'and goes on in the background: try again shortly. The code was not run.';
    return { returncode: TIMED_OUT_STATUS, stdout: '', stderr };
  }
  const files = { [lang.file]: code };
  const result = await runLocally(ctx, { argv: lang.argv, env: lang.env, files, copies, ttlSeconds: remaining });
  const stdout = result.stdout + (result.truncated.stdout ? `\n${truncationNote('stdout')}` : '');
  let stderr = result.stderr + (result.truncated.stderr ? `\n${truncationNote('stderr')}` : '');
  if (result.timedOut) stderr = [stderr.replace(/\n$/, ''), timeoutNote(ctx)].filter(Boolean).join('\n');
  return { returncode: result.timedOut ? TIMED_OUT_STATUS : (result.exitStatus ?? -1), stdout, stderr };
}

function truncationNote(stream: string): string {
  return `[${stream} truncated to ${MAX_OUTPUT_BYTES} bytes]`;
}

function timeoutNote(ctx: ToolRunContext): string {
  return `[timed out after ${ctx.runtime.ttl_seconds}s: the process was stopped]`;
}

/** `work`, or undefined if the deadline comes first; heartbeats meanwhile, rejects on cancellation. */
async function withinDeadline<T>(ctx: ToolRunContext, work: Promise<T>, deadline: number): Promise<T | undefined> {
  const stop = AbortSignal.any([ctx.signal, AbortSignal.timeout(Math.max(0, deadline - Date.now()))]);
  const heartbeats = setInterval(() => ctx.heartbeat(), 2_000);
  try {
    return await new Promise<T | undefined>((resolve, reject) => {
      const onStop = (): void => (ctx.signal.aborted ? reject(ctx.signal.reason) : resolve(undefined));
      if (stop.aborted) return onStop();
      stop.addEventListener('abort', onStop, { once: true });
      work.then(resolve, reject);
    });
  } finally {
    clearInterval(heartbeats);
  }
}

export const codeExecTools: Tool<Record<string, never>>[] = LANGUAGES.map(codeExecTool);
