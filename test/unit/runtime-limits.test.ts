/**
 * HEROKU_APPS, DYNO_SIZES and MAX_TOOL_CALLS in the tool catalogue: what a
 * request may ask of the operator's Heroku account, refused with a message
 * naming the field (403 for the allow-lists, 400 for max_calls).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { JsonSchemas } from '../../catalog/json-schema';
import { resolveTools } from '../../catalog/resolve-tools';
import { ToolNotAllowedError, ToolValidationError } from '../../catalog/tool-spec';
import { apiConfig, type ToolLimits } from '../../common/config';
import { toolObjectSchema } from '../../contract/request-schema';

const limits: ToolLimits = { herokuApps: ['app-a', 'app-b'], dynoSizes: ['standard-2x'], maxToolCalls: 7, maxApprovalTimeoutSeconds: 3600 };
const noMcp = { pool: { servers: [], server: () => undefined, refresh: () => Promise.resolve() }, maxTtlSeconds: 120 };
const schemas = new JsonSchemas(apiConfig({}).toolSchemas);
const resolve = (tools: unknown[], l: ToolLimits = limits) =>
  resolveTools(
    tools.map((t) => toolObjectSchema.parse(t)),
    { mcp: noMcp, schemas, limits: l },
  );
const dyno = (runtime: Record<string, unknown>) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { tool_params: { cmd: 'true', description: 'd' }, ...runtime },
});
const html = (runtime: Record<string, unknown>) => ({ type: 'heroku_tool', name: 'html_to_markdown', runtime_params: runtime });

async function refusal(tools: unknown[], l?: ToolLimits): Promise<{ kind: string; message: string }> {
  const err: unknown = await resolve(tools, l).then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ToolNotAllowedError || err instanceof ToolValidationError, String(err));
  return { kind: err instanceof ToolNotAllowedError ? '403' : '400', message: err.message };
}

describe('runtime limits', () => {
  test('apps and sizes on the lists, and max_calls up to the cap, are accepted', async () => {
    const [tool] = await resolve([dyno({ target_app_name: 'app-b', dyno_size: 'standard-2x', max_calls: 7 })]);
    assert.deepEqual(tool?.runtime, {
      target_app_name: 'app-b',
      dyno_size: 'standard-2x',
      ttl_seconds: 120,
      max_calls: 7,
      tool_params: tool?.runtime.tool_params,
    });
  });

  test('an app off HEROKU_APPS is refused on any tool, naming the field', async () => {
    assert.deepEqual(await refusal([html({}), html({ target_app_name: 'app-z' })]), {
      kind: '403',
      message: "tools[1].runtime_params.target_app_name 'app-z' is not allowed on this server (HEROKU_APPS: app-a, app-b)",
    });
  });

  test('a dyno size off DYNO_SIZES is refused, the default too where a dyno would run', async () => {
    assert.deepEqual(await refusal([dyno({ target_app_name: 'app-a', dyno_size: 'private-l' })]), {
      kind: '403',
      message: "tools[0].runtime_params.dyno_size 'private-l' is not allowed on this server (DYNO_SIZES: standard-2x)",
    });
    assert.deepEqual(await refusal([dyno({ target_app_name: 'app-a' })]), {
      kind: '403',
      message: "tools[0].runtime_params.dyno_size 'standard-1x' (the default) is not allowed on this server (DYNO_SIZES: standard-2x)",
    });
    // No app, no dyno: the default size does not matter.
    assert.equal((await resolve([html({})])).length, 1);
  });

  test('max_calls above MAX_TOOL_CALLS is a 400 naming the field and the variable', async () => {
    assert.deepEqual(await refusal([html({ max_calls: 8 })]), {
      kind: '400',
      message: 'tools[0].runtime_params.max_calls must be at most 7 on this server (MAX_TOOL_CALLS)',
    });
  });

  test('empty allow-lists allow any app and size', async () => {
    const open = { herokuApps: [], dynoSizes: [], maxToolCalls: 100, maxApprovalTimeoutSeconds: 3600 };
    assert.equal((await resolve([dyno({ target_app_name: 'anything', dyno_size: 'performance-l', max_calls: 100 })], open)).length, 1);
  });
});

describe('approvals in runtime_params', () => {
  test('requires_approval gives the tool its timeout, 86400 s unless set; other tools carry none', async () => {
    const [plain, guarded, timed] = await resolve([
      html({}),
      dyno({ target_app_name: 'app-a', dyno_size: 'standard-2x', requires_approval: true }),
      { type: 'heroku_tool', name: 'pdf_to_markdown', runtime_params: { requires_approval: true, approval_timeout_seconds: 60 } },
    ]);
    assert.equal(plain?.runtime.approval, undefined);
    assert.deepEqual(guarded?.runtime.approval, { timeout_seconds: 86_400 });
    assert.deepEqual(timed?.runtime.approval, { timeout_seconds: 60 });
    assert.equal(
      (await resolve([dyno({ target_app_name: 'app-a', dyno_size: 'standard-2x', requires_approval: false })]))[0]?.runtime.approval,
      undefined,
    );
  });

  test('approval_timeout_seconds above MAX_APPROVAL_TIMEOUT_SECONDS, or without requires_approval, is a 400 naming the field', async () => {
    assert.deepEqual(await refusal([html({ requires_approval: true, approval_timeout_seconds: 3601 })]), {
      kind: '400',
      message: 'tools[0].runtime_params.approval_timeout_seconds must be at most 3600 on this server (MAX_APPROVAL_TIMEOUT_SECONDS)',
    });
    assert.deepEqual(await refusal([html({ approval_timeout_seconds: 60 })]), {
      kind: '400',
      message: 'tools[0].runtime_params.approval_timeout_seconds needs requires_approval: true',
    });
  });
});
