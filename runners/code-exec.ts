/**
 * code_exec_python, code_exec_node, code_exec_ruby, code_exec_go: run the
 * model's code and answer, as Heroku does, with a CallToolResult whose text is
 * `{"returncode":N,"stdout":"…","stderr":"…"}` (isError when N ≠ 0).
 *
 * Where: in a one-off dyno of target_app_name when the worker has a Heroku API
 * key (the code travels in TOOL_CODE, the packages in TOOL_PACKAGES, never in
 * the command string; the dyno's stdout and stderr arrive as one stream,
 * reported as stdout), else in the worker's local sandbox (the code is a file
 * in the sandbox's /tmp; stdout and stderr are kept apart, and the notes on
 * limits the call ran into follow stderr).
 *
 * `packages` are installed in a dyno (pip, npm, gem, go get). The local
 * sandbox has no network: a call that asks for packages there is not run and
 * gets returncode 1 and a stderr that says why.
 */
import { codeExecTools, type CodeExecTool } from '../catalog/code-exec';
import { callToolResult } from '../contract/tool-payload';
import { timeoutNote, truncationNote, type CommandRuntime } from '../runtimes/command-runtime';
import { GO_CACHE_DIR, GO_ENV, goBuildCache } from '../runtimes/sandbox/go-build-cache';
import type { LocalSandbox } from '../runtimes/sandbox/local-sandbox';
import type { ToolRunContext } from '../tool-call/context';
import { runner, type ToolRunner } from './runner';

/** Exit status reported when the ttl stopped the code (as coreutils `timeout` does). */
export const TIMED_OUT_STATUS = 124;

/** How one language's code is run. */
interface Language {
  file: string;
  argv: string[];
  env?: Record<string, string>;
  /** Shell (dyno): installs the words of $TOOL_PACKAGES into the current dir. */
  dynoInstall: string;
  /** Shell (dyno): runs the code file. */
  dynoRun: string;
  /** Host dirs to copy into the local work dir, made ready within the call's ttl. */
  localCopies?: { what: string; prepare(sandbox: LocalSandbox): Promise<Record<string, string>> };
}

const LANGUAGES: Record<CodeExecTool, Language> = {
  code_exec_python: {
    file: 'main.py',
    argv: ['python3', 'main.py'],
    dynoInstall: 'python3 -m pip install --quiet --disable-pip-version-check --target .packages $TOOL_PACKAGES',
    dynoRun: 'PYTHONPATH="$PWD/.packages" python3 main.py',
  },
  code_exec_node: {
    file: 'main.js',
    argv: ['node', 'main.js'],
    dynoInstall: 'npm install --silent --no-save --no-package-lock --no-audit --no-fund $TOOL_PACKAGES',
    dynoRun: 'node main.js',
  },
  code_exec_ruby: {
    file: 'main.rb',
    argv: ['ruby', 'main.rb'],
    dynoInstall: 'GEM_HOME="$PWD/.gems" gem install --silent --no-document $TOOL_PACKAGES',
    dynoRun: 'GEM_HOME="$PWD/.gems" ruby main.rb',
  },
  code_exec_go: {
    file: 'main.go',
    argv: ['go', 'run', 'main.go'],
    env: GO_ENV,
    dynoInstall: 'go mod init sandbox 2>/dev/null && go get $TOOL_PACKAGES',
    dynoRun: 'go run main.go',
    localCopies: {
      what: "Go's build cache (the first Go call on this worker compiles the standard library)",
      prepare: async (sandbox): Promise<Record<string, string>> => {
        const cache = await goBuildCache(sandbox);
        return cache ? { [GO_CACHE_DIR]: cache } : {};
      },
    },
  },
};

interface Execution {
  returncode: number;
  stdout: string;
  stderr: string;
}

export const codeExecRunners = (commands: CommandRuntime): ToolRunner<Record<string, never>>[] =>
  codeExecTools.map((spec) =>
    runner(spec, async (ctx, _params, args) => {
      const lang = LANGUAGES[spec.name as CodeExecTool];
      const code = args.code as string;
      const packages = (args.packages as string[] | undefined) ?? [];
      const execution = commands.runsInDyno(ctx)
        ? await runInDyno(commands, ctx, lang, code, packages)
        : await runInSandbox(commands, ctx, lang, code, packages);
      return callToolResult(JSON.stringify(execution), execution.returncode !== 0);
    }),
  );

async function runInDyno(commands: CommandRuntime, ctx: ToolRunContext, lang: Language, code: string, packages: string[]): Promise<Execution> {
  // `set -f`: package names are split into words but never globbed; the schema keeps them from starting with "-".
  const script =
    `set -f; d=$(mktemp -d) && cd "$d" && printf '%s' "$TOOL_CODE" > ${lang.file} && ` +
    `{ [ -z "$TOOL_PACKAGES" ] || { ${lang.dynoInstall}; }; } && ${lang.dynoRun}`;
  const outcome = await commands.runCommand(ctx, script, { TOOL_CODE: code, TOOL_PACKAGES: packages.join(' ') });
  const notes: string[] = [];
  if (outcome.truncated) notes.push(truncationNote());
  if (outcome.timedOut) notes.push(timeoutNote(ctx.runtime.ttl_seconds));
  else if (outcome.exitStatus === null) notes.push('[exit status unknown: the dyno ended without reporting one]');
  return {
    returncode: outcome.timedOut ? TIMED_OUT_STATUS : (outcome.exitStatus ?? -1),
    stdout: outcome.output,
    stderr: notes.join('\n'),
  };
}

async function runInSandbox(commands: CommandRuntime, ctx: ToolRunContext, lang: Language, code: string, packages: string[]): Promise<Execution> {
  if (packages.length > 0) {
    const why =
      commands.sandbox.mode === 'bubblewrap'
        ? "this code runs in the worker's local sandbox, which has no network access"
        : 'this code runs on the worker host, where tools do not install packages';
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
  const copies = lang.localCopies ? await withinDeadline(ctx, lang.localCopies.prepare(commands.sandbox), deadline) : {};
  const remaining = (deadline - Date.now()) / 1000;
  if (copies === undefined || remaining <= 0) {
    const what = lang.localCopies?.what ?? 'the run';
    const stderr =
      `[timed out after ${ctx.runtime.ttl_seconds}s] Preparing ${what} took all of it ` +
      'and goes on in the background: try again shortly. The code was not run.';
    return { returncode: TIMED_OUT_STATUS, stdout: '', stderr };
  }
  const files = { [lang.file]: code };
  const result = await commands.runLocally(ctx, { argv: lang.argv, env: lang.env, files, copies, ttlSeconds: remaining });
  const stdout = result.stdout + (result.truncated.stdout ? `\n${truncationNote('stdout')}` : '');
  let stderr = result.stderr + (result.truncated.stderr ? `\n${truncationNote('stderr')}` : '');
  const notes = [...(result.timedOut ? [timeoutNote(ctx.runtime.ttl_seconds)] : []), ...result.notes];
  if (notes.length > 0) stderr = [stderr.replace(/\n$/, ''), ...notes].filter(Boolean).join('\n');
  return { returncode: result.timedOut ? TIMED_OUT_STATUS : (result.exitStatus ?? -1), stdout, stderr };
}

/** `work`, or undefined if the deadline comes first; rejects on cancellation. */
async function withinDeadline<T>(ctx: ToolRunContext, work: Promise<T>, deadline: number): Promise<T | undefined> {
  const stop = AbortSignal.any([ctx.signal, AbortSignal.timeout(Math.max(0, deadline - Date.now()))]);
  return new Promise<T | undefined>((resolve, reject) => {
    const onStop = (): void => (ctx.signal.aborted ? reject(ctx.signal.reason) : resolve(undefined));
    if (stop.aborted) return onStop();
    stop.addEventListener('abort', onStop, { once: true });
    work.then(resolve, reject);
  });
}
