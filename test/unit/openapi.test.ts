/** The checked-in docs/openapi.json is the document the schemas give today (`npm run openapi` rewrites it). */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openApiDocument, openApiText } from '../../api/openapi';
import { routeMatcher } from '../../api/route-templates';

test('docs/openapi.json is up to date: run `npm run openapi` after changing a schema', () => {
  const checkedIn = fs.readFileSync(path.join(__dirname, '../../docs/openapi.json'), 'utf8');
  assert.equal(checkedIn, openApiText());
});

test('the document is OpenAPI 3.1 with every route the API serves, and the request body is the validating schema', () => {
  const doc = openApiDocument();
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(Object.keys(doc.paths ?? {}).sort(), [
    '/healthz',
    '/metrics',
    '/openapi.json',
    '/v1/agents/heroku',
    '/v1/agents/runs',
    '/v1/agents/runs/{id}',
    '/v1/agents/runs/{id}/approvals/{tool_call_id}',
    '/v1/agents/runs/{id}/cancel',
    '/v1/agents/runs/{id}/stream',
    '/v1/agents/usage',
    '/v1/mcp/servers',
    '/v1/mcp/servers/sync',
  ]);
  const body = doc.paths?.['/v1/agents/heroku']?.post?.requestBody;
  assert.deepEqual(body && 'content' in body ? body.content['application/json']?.schema : undefined, { $ref: '#/components/schemas/AgentRequest' });
  const request = doc.components?.schemas?.AgentRequest as { required?: string[] };
  assert.deepEqual(request.required?.slice().sort(), ['messages', 'model']);
  for (const name of ['ChatCompletionEvent', 'ToolCompletionEvent', 'ApprovalRequestEvent', 'Error', 'RunView', 'Health', 'PublicHealth'])
    assert.ok(doc.components?.schemas?.[name], name);
});

test("metrics and spans name a request by its documented route; any other path is 'unmatched'", () => {
  const routeOf = routeMatcher(Object.keys(openApiDocument().paths ?? {}));
  assert.equal(routeOf('/v1/agents/runs/chatcmpl-0123/cancel'), '/v1/agents/runs/{id}/cancel');
  assert.equal(routeOf('/v1/agents/runs/chatcmpl-0123'), '/v1/agents/runs/{id}');
  assert.equal(routeOf('/v1/agents/runs'), '/v1/agents/runs');
  assert.equal(routeOf('/v1/agents/runs/a/b/c'), 'unmatched');
  assert.equal(routeOf('/wp-admin.php'), 'unmatched');
});
