/**
 * The workflow bundle (workflows/ and what they import, packed by webpack for
 * the SDK's sandbox), built in a child process. Built inside the worker,
 * webpack's memory stayed in the worker for its whole life: measured, a
 * worker idles at 317 MB RSS after bundling itself and at 219 MB with the
 * bundle built apart. Run directly with the bundle's options (JSON), this file
 * prints the bundle's code.
 */
import { spawn } from 'node:child_process';
import { bundleWorkflowCode, type BundleOptions, type BundlerPlugin } from '@temporalio/worker';
import { AppError } from '../common/errors';
import type { Log } from '../common/log';

/** What the child bundles with: the workflows module and the interceptor modules plugins add to the bundle. */
type ChildBundleOptions = Pick<BundleOptions, 'workflowsPath' | 'workflowInterceptorModules'>;

/**
 * The bundle of the workflows module at `workflowsPath`, with what `plugins` add to it (tracing's workflow
 * interceptors: with a bundle built apart, the worker no longer adds them), from a child process running this file
 * under the worker's module loaders (tsx). The bundler's multi-line report goes to `log` as one debug line.
 */
export async function buildWorkflowBundle(
  workflowsPath: string,
  { plugins = [], log }: { plugins?: BundlerPlugin[]; log?: Log } = {},
): Promise<{ code: string }> {
  const configured = plugins.reduce<BundleOptions>((options, plugin) => plugin.configureBundler?.(options) ?? options, { workflowsPath });
  const options: ChildBundleOptions = { workflowsPath: configured.workflowsPath, workflowInterceptorModules: configured.workflowInterceptorModules };
  // The worker's module loaders (tsx's) and nothing else of its Node options (an --eval, --test or --inspect
  // would run, test or stop the child); and none of the worker's secrets in the child's environment.
  const nodeOptions = loaderOptions(process.execArgv);
  const { PATH, HOME, TMPDIR } = process.env;
  const env = Object.fromEntries(Object.entries({ PATH, HOME, TMPDIR }).filter(([, v]) => v !== undefined));
  const child = spawn(process.execPath, [...nodeOptions, __filename, JSON.stringify(options)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
  const exit = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (exit !== 0) throw new AppError(`building the workflow bundle failed (exit ${exit}): ${stderr.trim().slice(-4000) || 'no output'}`);
  log?.debug(`workflow bundle built:\n${stderr.trim()}`);
  return { code: Buffer.concat(stdout).toString('utf8') };
}

const LOADER_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

/** The flags of `execArgv` that load modules before the script, with their values. */
export function loaderOptions(execArgv: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    if (LOADER_FLAGS.has(arg) && i + 1 < execArgv.length) kept.push(arg, execArgv[++i]!);
    else if (LOADER_FLAGS.has(arg.split('=')[0]!) && arg.includes('=')) kept.push(arg);
  }
  return kept;
}

if (require.main === module) {
  const report = (message: string) => void process.stderr.write(`${message}\n`);
  bundleWorkflowCode({
    ...(JSON.parse(process.argv[2] ?? '{}') as ChildBundleOptions),
    // The report goes to stderr, the code alone to stdout.
    logger: { log: report, trace: () => {}, debug: report, info: report, warn: report, error: report },
  }).then(
    ({ code }) => process.stdout.write(code),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
