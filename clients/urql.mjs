// urql (@urql/core) against a live runplane, with its defaults apart from the URL and the token: its own Accept
// headers (`text/event-stream` listed after the JSON types), subscriptions over fetch (SSE) and over graphql-ws
// from a browser origin, the persisted exchange (GET for hashed queries). One JSON line per step (common.mjs).
//
//   node clients/urql.mjs '{"http": ..., "ws": ..., "token": ..., "origin": ..., "projectId": ..., "runId": ...}'
import { cacheExchange, createClient, fetchExchange, gql, subscriptionExchange } from '@urql/core';
import { persistedExchange } from '@urql/exchange-persisted';
import { createClient as createWsClient } from 'graphql-ws';
import { onEnd, pipe, subscribe } from 'wonka';

import { BrowserWebSocket, OPERATIONS, config, print, recordingFetch, step } from './common.mjs';

const fetchOptions = { headers: { authorization: `Bearer ${config.token}` } };
const client = createClient({ url: config.http, fetch: recordingFetch, fetchOptions, exchanges: [cacheExchange, fetchExchange] });

const ME = gql(OPERATIONS.me);
const THREADS = gql(OPERATIONS.threads);
const DELETE = gql(OPERATIONS.deleteProject);
const EVENTS = gql(OPERATIONS.runEvents);

const ok = (result) => {
  if (result.error) throw result.error;
  return result.data;
};

const untilEnd = (source, timeoutMs = 20000) =>
  new Promise((resolve, reject) => {
    const events = [];
    const timer = setTimeout(() => reject(new Error(`timeout after ${events.length} events`)), timeoutMs);
    pipe(
      source,
      onEnd(() => {
        clearTimeout(timer);
        resolve(events);
      }),
      subscribe((result) => {
        if (result.error) {
          clearTimeout(timer);
          reject(result.error);
        } else if (result.data && result.hasNext !== false) {
          // urql closes a stream with the last result again, marked hasNext: false (its state, not an event)
          events.push(result.data.runEvents);
        }
      }),
    );
  });

await step('query', async (sent) => {
  const data = ok(await client.query(ME, {}).toPromise());
  return { email: data.me.email, wire: sent() };
});

await step('pages', async () => {
  const pages = [];
  const merged = [];
  let after = null;
  do {
    const data = ok(await client.query(THREADS, { id: config.projectId, after }).toPromise());
    const connection = data.project.threads;
    pages.push(connection.edges.length);
    merged.push(...connection.edges.map((edge) => edge.node.title));
    after = connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null;
  } while (after);
  return { pages, merged };
});

await step('mutation', async (sent) => {
  const data = ok(await client.mutation(DELETE, { id: 'UHJvamVjdDpub25l' }).toPromise());
  return { typename: data.deleteProject.__typename, code: data.deleteProject.code, wire: sent() };
});

await step('websocket', async () => {
  const socket = createWsClient({ url: config.ws, webSocketImpl: BrowserWebSocket, connectionParams: fetchOptions.headers, retryAttempts: 0 });
  const forwardSubscription = (request) => ({
    subscribe: (sink) => ({ unsubscribe: socket.subscribe({ ...request, query: request.query || '' }, sink) }),
  });
  const live = createClient({ url: config.http, exchanges: [subscriptionExchange({ forwardSubscription })] });
  try {
    const events = await untilEnd(live.subscription(EVENTS, { id: config.runId }));
    return { sequences: events.map((e) => e.sequence), types: events.map((e) => e.type) };
  } finally {
    await socket.dispose();
  }
});

await step('sse', async (sent) => {
  const streaming = createClient({ url: config.http, fetch: recordingFetch, fetchOptions, fetchSubscriptions: true, exchanges: [fetchExchange] });
  const events = await untilEnd(streaming.subscription(EVENTS, { id: config.runId }));
  return { sequences: events.map((e) => e.sequence), wire: sent() };
});

await step('apq', async (sent) => {
  const persisted = createClient({
    url: config.http,
    fetch: recordingFetch,
    fetchOptions,
    exchanges: [persistedExchange(), fetchExchange],
  });
  const query = gql`query Persisted${config.suffix} { me { id email } }`;
  const first = ok(await persisted.query(query, {}, { requestPolicy: 'network-only' }).toPromise());
  const second = ok(await persisted.query(query, {}, { requestPolicy: 'network-only' }).toPromise());
  return { emails: [first.me.email, second.me.email], wire: sent() };
});

await step('429', async (sent) => {
  for (let n = 0; n < 1000; n += 1) {
    const result = await client.query(ME, {}, { requestPolicy: 'network-only' }).toPromise();
    if (result.error) {
      return {
        statusCode: result.error.response && result.error.response.status,
        errors: result.error.graphQLErrors.map((e) => ({ message: e.message, extensions: e.extensions })),
        last: sent().at(-1),
      };
    }
  }
  throw new Error('never limited');
});

print({ done: true });
