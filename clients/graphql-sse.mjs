// The graphql-sse client (GraphQL over SSE, distinct connections mode) against a live runplane: a query and a
// subscription, each one POST with `Accept: text/event-stream`. One JSON line per step (common.mjs).
//
//   node clients/graphql-sse.mjs '{"http": ..., "token": ..., "runId": ...}'
import { createClient } from 'graphql-sse';

import { config, print, recordingFetch, step } from './common.mjs';

const client = createClient({
  url: config.http,
  headers: { authorization: `Bearer ${config.token}` },
  fetchFn: recordingFetch,
  retryAttempts: 0,
});

const all = async (request) => {
  const results = [];
  for await (const result of client.iterate(request)) {
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    results.push(result.data);
  }
  return results;
};

await step('query', async (sent) => {
  const [data] = await all({ query: 'query Me { me { email } }' });
  return { email: data.me.email, wire: sent() };
});

await step('subscription', async (sent) => {
  const results = await all({ query: 'subscription($id: ID!) { runEvents(runId: $id) { sequence } }', variables: { id: config.runId } });
  return { sequences: results.map((data) => data.runEvents.sequence), wire: sent() };
});

client.dispose();
print({ done: true });
