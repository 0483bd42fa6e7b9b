/**
 * Tool names on their way to the model and back: valid for an OpenAI-compatible
 * API (^[a-zA-Z0-9_-]{1,64}$), one to one, and the client's names restored in
 * the model's answer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelToolNames } from '../../activities/model-tool-names';
import type { ChatMessage } from '../../contract/wire';
import { FUNCTION_NAME } from '../doubles/model-server';

describe('ModelToolNames', () => {
  test('valid names are kept; MCP names become valid ones and map back', () => {
    const names = new ModelToolNames(['dyno_run_command', 'notes/echo', 'web/add']);
    assert.deepEqual(
      ['dyno_run_command', 'notes/echo', 'web/add'].map((n) => names.toModel(n)),
      ['dyno_run_command', 'notes__echo', 'web__add'],
    );
    assert.deepEqual(
      ['dyno_run_command', 'notes__echo', 'web__add'].map((n) => names.fromModel(n)),
      ['dyno_run_command', 'notes/echo', 'web/add'],
    );
  });

  test('every model-facing name is valid and distinct, even where the sanitized names collide', () => {
    const tools = ['x/a.b', 'x/a_b', 'x__a_b', `x/${'t'.repeat(80)}`, `x/${'t'.repeat(81)}`, 'x/ünïcode', 'x/'];
    const names = new ModelToolNames(tools);
    const modelNames = tools.map((n) => names.toModel(n));
    for (const n of modelNames) assert.match(n, FUNCTION_NAME);
    assert.equal(new Set(modelNames).size, tools.length, modelNames.join(' '));
    assert.equal(names.toModel('x__a_b'), 'x__a_b', 'a valid name keeps itself, even when an MCP name would sanitize to it');
    assert.deepEqual(
      modelNames.map((n) => names.fromModel(n)),
      tools,
    );
  });

  test('the conversation and the answer: calls and tool messages renamed, contents untouched', () => {
    const names = new ModelToolNames(['notes/echo']);
    const conversation: ChatMessage[] = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'notes/echo', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', name: 'notes/echo', content: "Tool 'notes/echo' returned result: x" },
      // From the client's own history: a tool this run does not offer is only made valid.
      { role: 'assistant', content: null, tool_calls: [{ id: 'c2', type: 'function', function: { name: 'old/tool', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c2', content: 'y' },
    ];
    assert.deepEqual(names.conversation(conversation), [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'notes__echo', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', name: 'notes__echo', content: "Tool 'notes/echo' returned result: x" },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c2', type: 'function', function: { name: 'old__tool', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c2', content: 'y' },
    ]);
    assert.equal(conversation[1]!.role === 'assistant' && conversation[1]!.tool_calls![0]!.function.name, 'notes/echo', 'the input is not changed');

    const answer = names.answer({
      role: 'assistant',
      content: null,
      refusal: null,
      tool_calls: [
        { id: 'c3', type: 'function', function: { name: 'notes__echo', arguments: '{"text":"x"}' } },
        { id: 'c4', type: 'function', function: { name: 'made_up', arguments: '{}' } },
      ],
    });
    assert.deepEqual(
      answer.tool_calls!.map((c) => c.function.name),
      ['notes/echo', 'made_up'],
    );
  });
});
