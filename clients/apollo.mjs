// Apollo Client 3 against a live runplane, with its defaults apart from the URL and the token: HttpLink (its own
// Accept headers; subscriptions over multipart), GraphQLWsLink from a browser origin, the persisted-query link,
// InMemoryCache with relayStylePagination. One JSON line per step (common.mjs); the pytest side checks them.
//
//   node clients/apollo.mjs '{"http": ..., "ws": ..., "token": ..., "origin": ..., "projectId": ..., "runId": ...}'
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions/index.js';
import { relayStylePagination } from '@apollo/client/utilities/index.js';
import { createClient } from 'graphql-ws';

import { BrowserWebSocket, OPERATIONS, config, eventsOf, print, recordingFetch, sha256, step } from './common.mjs';

const headers = { authorization: `Bearer ${config.token}` };
const http = () => new HttpLink({ uri: config.http, headers, fetch: recordingFetch });
const cache = () =>
  new InMemoryCache({ typePolicies: { Project: { fields: { threads: relayStylePagination() } } } });
const client = new ApolloClient({ link: http(), cache: cache() });

const ME = gql(OPERATIONS.me);
const THREADS = gql(OPERATIONS.threads);
const DELETE = gql(OPERATIONS.deleteProject);
const EVENTS = gql(OPERATIONS.runEvents);

await step('query', async (sent) => {
  const { data } = await client.query({ query: ME });
  return { email: data.me.email, wire: sent() };
});

await step('pages', async () => {
  // fetchMore with the connection's endCursor; relayStylePagination merges each page into the cached connection
  const watch = client.watchQuery({ query: THREADS, variables: { id: config.projectId } });
  let current = await watch.result();
  const pages = [current.data.project.threads.edges.length];
  while (current.data.project.threads.pageInfo.hasNextPage) {
    const after = current.data.project.threads.pageInfo.endCursor;
    const page = await watch.fetchMore({ variables: { after } });
    pages.push(page.data.project.threads.edges.length);
    current = watch.getCurrentResult();
  }
  return { pages, merged: current.data.project.threads.edges.map((edge) => edge.node.title) };
});

await step('mutation', async () => {
  const { data } = await client.mutate({ mutation: DELETE, variables: { id: 'UHJvamVjdDpub25l' } });
  return { typename: data.deleteProject.__typename, code: data.deleteProject.code };
});

await step('websocket', async () => {
  const socket = createClient({ url: config.ws, webSocketImpl: BrowserWebSocket, connectionParams: headers, retryAttempts: 0 });
  const live = new ApolloClient({ link: new GraphQLWsLink(socket), cache: cache() });
  try {
    const events = await eventsOf(live.subscribe({ query: EVENTS, variables: { id: config.runId } }), (d) => d.runEvents);
    return { sequences: events.map((e) => e.sequence), types: events.map((e) => e.type) };
  } finally {
    await socket.dispose();
  }
});

await step('multipart', async (sent) => {
  const events = await eventsOf(client.subscribe({ query: EVENTS, variables: { id: config.runId } }), (d) => d.runEvents);
  return { sequences: events.map((e) => e.sequence), wire: sent() };
});

await step('apq', async (sent) => {
  const link = ApolloLink.from([createPersistedQueryLink({ sha256 }), http()]);
  const persisted = new ApolloClient({ link, cache: cache() });
  const query = gql`query Persisted${config.suffix} { me { id email } }`;
  const first = await persisted.query({ query, fetchPolicy: 'network-only' });
  const second = await persisted.query({ query, fetchPolicy: 'network-only' });
  return { emails: [first.data.me.email, second.data.me.email], wire: sent() };
});

await step('apq_get', async (sent) => {
  // useGETForHashedQueries: hashed queries over GET (cacheable); the registration retry is a POST
  const link = ApolloLink.from([createPersistedQueryLink({ sha256, useGETForHashedQueries: true }), http()]);
  const persisted = new ApolloClient({ link, cache: cache() });
  const query = gql`query PersistedGet${config.suffix} { me { id email } }`;
  const first = await persisted.query({ query, fetchPolicy: 'network-only' });
  const second = await persisted.query({ query, fetchPolicy: 'network-only' });
  return { emails: [first.data.me.email, second.data.me.email], wire: sent() };
});

await step('429', async (sent) => {
  for (let n = 0; n < 1000; n += 1) {
    try {
      await client.query({ query: ME, fetchPolicy: 'network-only' });
    } catch (error) {
      const result = error.networkError && error.networkError.result;
      return { statusCode: error.networkError && error.networkError.statusCode, errors: result && result.errors, last: sent().at(-1) };
    }
  }
  throw new Error('never limited');
});

print({ done: true });
