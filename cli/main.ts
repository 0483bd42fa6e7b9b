/**
 * `durable-agents`: the command-line client (bin/durable-agents). Runs an
 * agent and shows its stream, resuming after a dropped connection; lists,
 * shows, follows and cancels runs. Usage, settings and exit codes:
 * docs/api.md#the-command-line-client.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { RunListItem, RunView } from '../api/runs';
import { ConfigError } from '../common/errors';
import { addUsage, type CompletionEvent, type Usage } from '../contract/wire';
import { followRun, type FollowFrom } from './follow';
import { renderError, renderEvent, renderRun, renderRunList, renderUsage } from './render';
import { CliError, EXIT, json, parseJson, request, serviceFromEnv, type Service } from './service';

const out = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);

function integer(min: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer of at least ${min}`);
    return n;
  };
}

function decimal(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('must be a number');
  return n;
}

/** A JSON file given on the command line; `-` is stdin. */
function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${what} file ${file}: ${(err as Error).message}`, EXIT.usage);
  }
  const value = parseJson(text);
  if (value === undefined) throw new CliError(`${what} file ${file} is not valid JSON`, EXIT.usage);
  return value;
}

/** An array from a file: the array itself, or the named field of an object (a saved request body). */
function arrayFromFile(file: string, field: 'messages' | 'tools'): unknown[] {
  const value = readJsonFile(file, field);
  const array = Array.isArray(value) ? value : (value as Record<string, unknown> | null)?.[field];
  if (!Array.isArray(array)) throw new CliError(`${field} file ${file} must hold a JSON array (or an object with a "${field}" array)`, EXIT.usage);
  return array;
}

interface RunOptions {
  model: string;
  messages?: string;
  tools?: string;
  maxTokens?: number;
  temperature?: number;
  idempotencyKey?: string;
  json?: boolean;
  resumeTimeout: number;
}

function requestBody(prompt: string[], opts: RunOptions): Record<string, unknown> {
  const messages = opts.messages ? arrayFromFile(opts.messages, 'messages') : [];
  if (prompt.length) messages.push({ role: 'user', content: prompt.join(' ') });
  if (messages.length === 0) throw new CliError('nothing to ask: give a prompt or --messages <file>', EXIT.usage);
  return {
    model: opts.model,
    messages,
    ...(opts.tools ? { tools: arrayFromFile(opts.tools, 'tools') } : {}),
    ...(opts.maxTokens !== undefined ? { max_tokens_per_inference_request: opts.maxTokens } : {}),
    ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
  };
}

/** Shows a stream as it comes and says how it ended; returns the exit code that says it too. */
async function show(service: Service, from: FollowFrom, asJson: boolean): Promise<number> {
  const usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  let events = 0;
  const end = await followRun(
    service,
    {
      onRun: (runId) => note(`run ${runId} (follow it again: durable-agents tail ${runId})`),
      onEvent: (event: CompletionEvent) => {
        events++;
        if (event.object === 'chat.completion') addUsage(usage, event.usage);
        out(asJson ? JSON.stringify(event) : renderEvent(event));
      },
      onReconnect: (why) => note(`reconnecting: ${why}`),
    },
    from,
  );
  if (end.error) {
    note(renderError(end.error));
    return EXIT.runFailed;
  }
  note(`done: ${events} events, ${renderUsage(usage)}`);
  return EXIT.ok;
}

/** The commands; each action sets `result.code`, the command's exit code. */
function program(env: NodeJS.ProcessEnv, result: { code: number }): Command {
  const service = () => serviceFromEnv(env);
  const resumeTimeout = new Option('--resume-timeout <seconds>', 'how long to keep reconnecting without progress').argParser(integer(1)).default(120);
  const cli = new Command('durable-agents')
    .description('Runs agents on a durable-agents service (AGENTS_URL, key in AGENTS_API_KEY) and shows their streams.')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  cli
    .command('run')
    .description('post a request and show its stream until the run ends')
    .argument('[prompt...]', 'the user message (appended after --messages)')
    .requiredOption('-m, --model <name>', 'the model')
    .option('--messages <file>', 'JSON array of messages (or a request body holding one); - for stdin')
    .option('-t, --tools <file>', 'JSON array of tool objects (or a request body holding one)')
    .option('--max-tokens <n>', 'max_tokens_per_inference_request', integer(1))
    .option('--temperature <x>', 'temperature, 0 to 1', decimal)
    .option('--idempotency-key <key>', 'Idempotency-Key of the request (default: a new one, so a retried request attaches to its run)')
    .option('--json', 'print each event as a JSON line')
    .addOption(resumeTimeout)
    .action(async (prompt: string[], opts: RunOptions) => {
      const body = JSON.stringify(requestBody(prompt, opts));
      const s = service();
      const idempotencyKey = opts.idempotencyKey ?? randomUUID();
      const post = () =>
        request(s, '/v1/agents/heroku', { method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey }, body });
      result.code = await show(s, { open: post, resumeTimeoutMs: opts.resumeTimeout * 1000 }, Boolean(opts.json));
    });

  cli
    .command('tail')
    .description("show a run's events (from the start, or after --after) and follow it until it ends")
    .argument('<run-id>', 'the run id (chatcmpl-...)')
    .option('--after <n>', 'the last offset already seen; -1 for all', integer(-1), -1)
    .option('--json', 'print each event as a JSON line')
    .addOption(resumeTimeout)
    .action(async (runId: string, opts: { after: number; json?: boolean; resumeTimeout: number }) => {
      result.code = await show(service(), { runId, after: opts.after, resumeTimeoutMs: opts.resumeTimeout * 1000 }, Boolean(opts.json));
    });

  cli
    .command('runs')
    .description('list recent runs, newest first')
    .addOption(new Option('--status <status>', 'only runs of this status').choices(['running', 'completed', 'failed', 'cancelled']))
    .option('--limit <n>', 'how many, 1 to 100', integer(1), 20)
    .option('--json', 'print the answer as JSON')
    .action(async (opts: { status?: string; limit: number; json?: boolean }) => {
      const query = new URLSearchParams({ limit: String(opts.limit), ...(opts.status ? { status: opts.status } : {}) });
      const { data } = await json<{ data: RunListItem[] }>(await request(service(), `/v1/agents/runs?${query}`));
      out(opts.json ? JSON.stringify(data, null, 2) : renderRunList(data));
    });

  cli
    .command('show')
    .description("print a run's status and totals")
    .argument('<run-id>', 'the run id (chatcmpl-...)')
    .option('--json', 'print the answer as JSON')
    .action(async (runId: string, opts: { json?: boolean }) => {
      const run = await json<RunView>(await request(service(), `/v1/agents/runs/${encodeURIComponent(runId)}`));
      out(opts.json ? JSON.stringify(run, null, 2) : renderRun(run));
    });

  cli
    .command('cancel')
    .description('cancel a run (its stream then ends with a cancelled error)')
    .argument('<run-id>', 'the run id (chatcmpl-...)')
    .option('--json', 'print the answer as JSON')
    .action(async (runId: string, opts: { json?: boolean }) => {
      const answer = await json<{ id: string; status: string }>(
        await request(service(), `/v1/agents/runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST' }),
      );
      out(opts.json ? JSON.stringify(answer) : `${answer.id}: ${answer.status}`);
    });

  return cli;
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const result = { code: EXIT.ok as number };
  try {
    await program(env, result).parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage; // commander printed the problem
    if (err instanceof CliError) {
      note(`durable-agents: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      note(`durable-agents: ${err.message}`);
      return EXIT.usage;
    }
    throw err;
  }
}
