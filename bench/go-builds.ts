/**
 * The bench's `go` row: code_exec_go in the local sandbox, timed from the
 * chat.completion that asks for it to its tool.completion. The first call
 * builds Go's cache if this machine has none yet; the warm calls after it
 * show what a call costs once the cache is there.
 */
import { BUDGET_MS, completed, request, sequentially, stat, timedRun, type Stat } from './measure';
import type { System } from './systems';

/** A Go call's ttl: the first one on a machine without a build cache compiles the standard library. */
const GO_TTL_SECONDS = 120;
const WARM_CALLS = 5;
const CODE = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(6 * 7) }\n';

export interface GoFigures {
  /** The first call's tool part, in ms; undefined when it failed. */
  first?: number;
  warm: Stat;
  failed: number;
}

/** The tool result of a code_exec_go call that printed 42. */
function printed42(content: string | undefined): boolean {
  try {
    const result = JSON.parse((content ?? '').replace(/^Tool '[^']*' returned result: /, ''));
    return JSON.parse(result.content[0].text).stdout === '42\n';
  } catch {
    return false;
  }
}

async function toolPart(system: System): Promise<number | undefined> {
  const body = request(`CALL code_exec_go ${JSON.stringify({ code: CODE })}`, [
    { type: 'heroku_tool', name: 'code_exec_go', runtime_params: { ttl_seconds: GO_TTL_SECONDS } },
  ]);
  const run = await timedRun(system, body, undefined, (GO_TTL_SECONDS + 30) * 1000);
  const call = run.frames.find((f) => f.object === 'chat.completion');
  const tool = run.frames.find((f) => f.object === 'tool.completion');
  return completed(run) && call && tool && printed42(tool.content) ? tool.at - call.at : undefined;
}

export async function goBuilds(system: System): Promise<GoFigures> {
  const first = await toolPart(system).catch(() => undefined);
  const warm = await sequentially(WARM_CALLS, BUDGET_MS.go, () => toolPart(system));
  return { first, warm: stat(warm.ok), failed: warm.failed + (first === undefined ? 1 : 0) };
}
